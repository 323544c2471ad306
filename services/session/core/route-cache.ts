// The bindings (RouteStore.list) of the users this member last sent messages to, so that a
// message for a connection on another member costs one Redis step instead of two: the sender
// picks the binding from here and the direct write checks, in the step that writes, that the
// routing rules still pick it (DirectWrite.current). Nothing here is ever trusted without
// that check, so it needs no invalidation: a stale entry costs one step that writes nothing,
// after which the message is routed from the bindings as they are and the entry replaced.
// Bounded: past `capacity` users, the one remembered longest ago is forgotten first.
import type { OnlineResource } from "../../shared/stores/route/route-store.js";

export class RouteCache {
  private readonly bindings = new Map<string, readonly OnlineResource[]>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.bindings.size;
  }

  get(bareJid: string): readonly OnlineResource[] | undefined {
    return this.bindings.get(bareJid);
  }

  remember(bareJid: string, resources: readonly OnlineResource[]): void {
    if (this.capacity <= 0) return;
    this.bindings.delete(bareJid);
    this.bindings.set(bareJid, resources);
    if (this.bindings.size > this.capacity)
      this.bindings.delete(this.bindings.keys().next().value as string);
  }

  forget(bareJid: string): void {
    this.bindings.delete(bareJid);
  }
}
