// The connections this session process currently serves, with one promise chain per
// connection so that its packets, timers and kicks are applied one at a time, in order.
import { compareEntryIds } from "../../shared/bus/packets.js";
import type { ConnState } from "../core/connection.js";

/** How many recently ended connection ids are remembered (to ignore redelivered opens). */
export const RECENTLY_CLOSED_CAPACITY = 65536;

export class ConnectionTable {
  private readonly conns = new Map<string, ConnState>();
  private readonly tails = new Map<string, Promise<void>>();
  /** Insertion-ordered, bounded: the oldest id is forgotten first. */
  private readonly recentlyClosed = new Set<string>();
  /**
   * Stanzas queued through a connection's inbox behind others (route packets with q), not yet
   * applied: while any are, later stanzas for it queue too rather than overtake them.
   */
  private readonly queuedRoutes = new Map<string, number>();
  /** Connection ids by the address of the edge holding their socket (for the edge watcher). */
  private readonly byEdge = new Map<string, Set<string>>();
  private readonly setListeners = new Set<(connId: string) => void>();
  /** XEP-0198: connection id by stream management id, for resumption. */
  private readonly bySmId = new Map<string, string>();
  /** XEP-0198: recently resumed sessions, old connection id → new one (bounded, oldest first). */
  private readonly movedTo = new Map<string, string>();
  /**
   * Connections whose state changed since their last snapshot and is kept in memory only
   * (a login of this process's own socket not bound yet, packet-processor.ts): saved if their
   * shard is handed over, lost with the process, as their sockets are.
   */
  private readonly unsavedIds = new Set<string>();

  get(connId: string): ConnState | undefined {
    return this.conns.get(connId);
  }

  set(conn: ConnState): void {
    const previous = this.conns.get(conn.connId);
    if (previous && previous.edgeId !== conn.edgeId) this.unindex(previous);
    this.conns.set(conn.connId, conn);
    this.index(conn);
    for (const listener of this.setListeners) listener(conn.connId);
  }

  /** `conn` (in the table) is now on the edge at `address` (BOSH: each request may move it). */
  changeEdge(conn: ConnState, address: string): void {
    this.unindex(conn);
    conn.edgeId = address;
    this.index(conn);
  }

  private index(conn: ConnState): void {
    let ids = this.byEdge.get(conn.edgeId);
    if (!ids) this.byEdge.set(conn.edgeId, (ids = new Set()));
    ids.add(conn.connId);
    if (conn.sm) this.indexSm(conn);
  }

  /**
   * A session moved by a resumption leaves its old connection's snapshot behind only if the
   * process died between saving the new one and deleting the old: the newer one (the later
   * entry applied) holds the session.
   */
  private indexSm(conn: ConnState): void {
    const id = (conn.sm as { id: string }).id;
    const holder = this.bySmId.get(id);
    const other =
      holder === undefined || holder === conn.connId ? undefined : this.conns.get(holder);
    if (other && compareEntryIds(other.lastEntryId, conn.lastEntryId) > 0) return;
    this.bySmId.set(id, conn.connId);
  }

  private unindex(conn: ConnState): void {
    if (conn.sm && this.bySmId.get(conn.sm.id) === conn.connId) this.bySmId.delete(conn.sm.id);
    const ids = this.byEdge.get(conn.edgeId);
    ids?.delete(conn.connId);
    if (ids?.size === 0) this.byEdge.delete(conn.edgeId);
  }

  /** The connection holding stream management session `smId` (set() indexes it). */
  connOfSm(smId: string): string | undefined {
    const indexed = this.bySmId.get(smId);
    if (indexed && this.conns.get(indexed)?.sm?.id === smId) return indexed;
    // Enabled on a connection already in the table (set() ran before): resumes are rare
    // enough to look once and remember.
    for (const conn of this.conns.values()) {
      if (conn.sm?.id !== smId) continue;
      this.bySmId.set(smId, conn.connId);
      return conn.connId;
    }
    return undefined;
  }

  /** A resumption moved the session of `from` to `to`. */
  moved(from: string, to: string): void {
    this.movedTo.set(from, to);
    if (this.movedTo.size > RECENTLY_CLOSED_CAPACITY)
      this.movedTo.delete(this.movedTo.keys().next().value as string);
  }

  /**
   * Where resumptions moved the session of `connId`, if this process saw it happen: the latest
   * id, after every move (a session can be resumed again before a stanza for an older id is
   * applied). Ids never repeat, so the walk ends; the bound only guards against a bug.
   */
  successorOf(connId: string): string | undefined {
    let latest: string | undefined;
    for (let next = this.movedTo.get(connId), hops = 0; next !== undefined && hops < 64; hops++) {
      latest = next;
      next = this.movedTo.get(next);
    }
    return latest;
  }

  /** A stanza for `connId` was queued through its inbox (a route packet with q). */
  routeQueued(connId: string): void {
    this.queuedRoutes.set(connId, (this.queuedRoutes.get(connId) ?? 0) + 1);
  }

  /** A queued route packet for `connId` was applied. */
  queuedRouteApplied(connId: string): void {
    const left = (this.queuedRoutes.get(connId) ?? 0) - 1;
    if (left > 0) this.queuedRoutes.set(connId, left);
    else this.queuedRoutes.delete(connId);
  }

  hasQueuedRoutes(connId: string): boolean {
    return this.queuedRoutes.has(connId);
  }

  /** The edge addresses our connections' sockets are on. */
  edgeAddresses(): string[] {
    return [...this.byEdge.keys()];
  }

  /** The ids of our connections whose socket is on the edge at `address`. */
  connsOnEdge(address: string): string[] {
    return [...(this.byEdge.get(address) ?? [])];
  }

  /** Calls `listener` with the id of every connection set() from now on; returns the undo. */
  onSet(listener: (connId: string) => void): () => void {
    this.setListeners.add(listener);
    return () => this.setListeners.delete(listener);
  }

  /** `connId`'s state is newer than its snapshot, kept in memory only (or, false: saved). */
  markUnsaved(connId: string, unsaved: boolean): void {
    if (unsaved) this.unsavedIds.add(connId);
    else this.unsavedIds.delete(connId);
  }

  isUnsaved(connId: string): boolean {
    return this.unsavedIds.has(connId);
  }

  /** The connections of `shard` whose state is newer than their snapshots. */
  unsavedOf(shard: number): ConnState[] {
    const conns: ConnState[] = [];
    for (const connId of this.unsavedIds) {
      const conn = this.conns.get(connId);
      if (conn?.shard === shard) conns.push(conn);
    }
    return conns;
  }

  /** Forgets a connection for good: a later `open` for the same id is a redelivery. */
  delete(connId: string): void {
    const conn = this.conns.get(connId);
    if (conn) this.unindex(conn);
    this.conns.delete(connId);
    this.unsavedIds.delete(connId);
    this.queuedRoutes.delete(connId);
    this.recentlyClosed.add(connId);
    if (this.recentlyClosed.size > RECENTLY_CLOSED_CAPACITY) {
      this.recentlyClosed.delete(this.recentlyClosed.values().next().value as string);
    }
  }

  /** Undoes set() of a connection created by a batch that failed. */
  forget(connId: string): void {
    const conn = this.conns.get(connId);
    if (conn) this.unindex(conn);
    this.conns.delete(connId);
    this.unsavedIds.delete(connId);
  }

  /** Undoes the `delete` of a unit that failed and is rolled back. */
  unmarkClosed(connId: string): void {
    this.recentlyClosed.delete(connId);
  }

  wasClosed(connId: string): boolean {
    return this.recentlyClosed.has(connId);
  }

  get size(): number {
    return this.conns.size;
  }

  all(): ConnState[] {
    return [...this.conns.values()];
  }

  /**
   * Takes `connId`'s turn at once if no work for it is queued or running, and keeps it until
   * the returned release is called; undefined (nothing taken) otherwise. Never waits, so a
   * unit may take another connection's turn while holding its own without any risk of two
   * units waiting for each other.
   */
  tryHold(connId: string): (() => void) | undefined {
    if (this.tails.has(connId)) return undefined;
    let release!: () => void;
    const tail = new Promise<void>((resolve) => (release = resolve));
    this.tails.set(connId, tail);
    void tail.then(() => {
      if (this.tails.get(connId) === tail) this.tails.delete(connId);
    });
    return release;
  }

  /** Runs `work` after every earlier piece of work for the same connection has settled. */
  withConn<T>(connId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(connId) ?? Promise.resolve();
    const result = previous.then(work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(connId, tail);
    // `tail` never rejects (both outcomes are mapped to undefined above).
    void tail.then(() => {
      if (this.tails.get(connId) === tail) this.tails.delete(connId);
    });
    return result;
  }
}
