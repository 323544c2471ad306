// What every Membership backend keeps the same way: the current member list as its holder last
// saw it, and the listeners told when it changes.
import { normalizeMembers, sameMembers, type MembershipListener } from "./membership.js";

export class MembershipView {
  private current: readonly string[] = [];
  private readonly listeners = new Set<MembershipListener>();

  /** `onListenerError`: what to do with a listener that throws (the others are still told). */
  constructor(private readonly onListenerError: (err: unknown) => void) {}

  members(): readonly string[] {
    return this.current;
  }

  onChange(listener: MembershipListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Replaces the list (sorted, deduplicated); tells every listener if it changed. */
  set(ids: Iterable<string>): void {
    const next = normalizeMembers(ids);
    if (sameMembers(next, this.current)) return;
    this.current = next;
    for (const listener of [...this.listeners]) {
      try {
        listener(next);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
