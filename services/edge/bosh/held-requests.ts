// The BOSH requests an edge holds open, keyed by (connection, rid), until their session answers
// (an edge `bosh` packet). No timer per request: one sweep answers those held past a bound
// (longer than any session's wait) with 503, which BOSH clients retry with the same rid (the
// session then answers from what it kept). Nothing here must survive the edge: a request it
// loses is retried by its client through another edge.
import type { HttpResponse } from "uWebSockets.js";

export interface HeldRequest {
  res: HttpResponse;
  /** Monotonic ms when it started being held. */
  atMs: number;
  /** Writes `status` and `body` (with its CORS headers) to `res`; corked by the caller. */
  write(status: string, contentType: string, body: string): void;
}

export class HeldRequests {
  private readonly byKey = new Map<string, HeldRequest>();

  get size(): number {
    return this.byKey.size;
  }

  static key(connId: string, rid: string): string {
    return `${connId} ${rid}`;
  }

  /**
   * Holds `request` for (connId, rid). A request already held under that key (the client sent
   * the same rid again on a new HTTP connection) is replaced: only the latest can be answered.
   */
  hold(connId: string, rid: string, request: HeldRequest): HeldRequest | undefined {
    const key = HeldRequests.key(connId, rid);
    const previous = this.byKey.get(key);
    // Deleted first, so that the map's order stays the order of atMs (takeOlderThan).
    this.byKey.delete(key);
    this.byKey.set(key, request);
    return previous;
  }

  /** The request held for (connId, rid), no longer held; undefined if none. */
  take(connId: string, rid: string): HeldRequest | undefined {
    const key = HeldRequests.key(connId, rid);
    const request = this.byKey.get(key);
    if (request) this.byKey.delete(key);
    return request;
  }

  /** Forgets `request` if it is still the one held for (connId, rid) (its client went away). */
  drop(connId: string, rid: string, request: HeldRequest): void {
    const key = HeldRequests.key(connId, rid);
    if (this.byKey.get(key) === request) this.byKey.delete(key);
  }

  /** Removes and returns the requests held since before `beforeMs` (all of them: Infinity). */
  takeOlderThan(beforeMs: number): HeldRequest[] {
    const old: HeldRequest[] = [];
    for (const [key, request] of this.byKey) {
      if (request.atMs >= beforeMs) break; // held in order: the rest are younger
      this.byKey.delete(key);
      old.push(request);
    }
    return old;
  }
}
