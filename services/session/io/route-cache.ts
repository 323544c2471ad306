// Users' bindings as this member last read them (RouteStore.versioned), so that a message for
// a connection on another member's shard costs one Redis step instead of two: the direct
// write checks in its own step that the bindings are still at the version the choice was made
// from (DIRECT_DELIVER) and writes nothing otherwise; the sender then reads them again. So an
// entry is never trusted, only tried: it needs no invalidation to be correct, and a stale one
// costs one wasted step. Bounded: past maxEntries the entry stored longest ago goes.
import type { VersionedBindings } from "../../shared/stores/route/route-store.js";
import type { BindingsCache } from "../core/context.js";

export class RouteCache implements BindingsCache {
  private readonly entries = new Map<string, VersionedBindings>();

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(bareJid: string): VersionedBindings | undefined {
    return this.entries.get(bareJid);
  }

  remember(bareJid: string, bindings: VersionedBindings): void {
    // Without a version (nothing bound, or bound by an older release) nothing could check it.
    if (bindings.version === "" || this.maxEntries === 0) return;
    // Deleted first so that it counts as the newest (a Map keeps insertion order).
    this.entries.delete(bareJid);
    this.entries.set(bareJid, bindings);
    if (this.entries.size > this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
  }

  forget(bareJid: string): void {
    this.entries.delete(bareJid);
  }
}
