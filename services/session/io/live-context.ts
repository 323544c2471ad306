// The SessionContext of a running session process: sends go to the owning edge's inbox,
// deliveries to connections of shards this process owns skip Redis, all others travel as
// `route` packets. Each unit of work (a batch, a ping sweep) gets its own scoped context
// that tracks its writes, so that a batch is acknowledged only after its own effects are
// stored (flush) and a failure of one unit is never observed by another.
import type { Element } from "ltx";
import { randomId } from "../../shared/random-id.js";
import type { Bus } from "../../shared/bus/bus.js";
import { OriginCounter, rememberOrigin } from "../../shared/bus/origin.js";
import type { ResumeRequest, ShardPacket } from "../../shared/bus/packets.js";
import type { Config } from "../../shared/config.js";
import { parseConnId } from "../../shared/conn-id.js";
import type { Logger } from "../../shared/log.js";
import { NS_CLIENT } from "../../shared/ns.js";
import { isStoreError } from "../../shared/redis/errors.js";
import type { LocalDelivery } from "./local-delivery.js";
import type { SnapshotSave, SnapshotWriter } from "./snapshot-writer.js";
import { StreamError, type StreamErrorCondition } from "../../shared/xmpp-errors.js";
import { DurableCopy, type ConnState } from "../core/connection.js";
import type { DirectTarget, SessionContext, Stores } from "../core/context.js";
import type { DirectDelivery } from "./direct-delivery.js";
import type { OwnEdgeShards } from "./shard-host.js";
import type { HandlerChain } from "../core/handler-chain.js";
import type { CoreObserver } from "../core/observer.js";
import { closeElement, openElement } from "../core/stream.js";
import type { SessionMetrics } from "../session-metrics.js";
import type { ConnectionTable } from "./connection-table.js";
import { deliverRouted } from "./reroute.js";
import { settleUnacked, smSend } from "./stream-management.js";
import { transportOf, type HeldFrame } from "./client-transport.js";
import type { BoshTimers } from "./bosh/bosh-timers.js";
import { isBosh } from "./bosh/bosh-output.js";
import type { UnackedStanza } from "../../shared/stores/sm/sm-queue-store.js";

const STANZA_NAMES = new Set(["message", "presence", "iq"]);

/**
 * RFC 7395 §3.3.3: with no stream wrapper, every top-level element carries its namespace;
 * stanzas built by the server get jabber:client here, once, rather than at every call site.
 */
function withClientNamespace(element: Element): Element {
  if (STANZA_NAMES.has(element.name) && !element.attrs.xmlns) element.attrs.xmlns = NS_CLIENT;
  return element;
}

/** Another connection whose turn a unit holds to deliver to it (holdForDelivery). */
interface HeldConn {
  conn: ConnState;
  /** Its state before this unit changed it, put back if the unit fails before saving it. */
  copy: DurableCopy;
  release: () => void;
  saved: boolean;
  /**
   * Frames for its client, written by the step that saves it or once it is saved (a failure
   * before puts it back unseen).
   */
  frames: HeldFrame[];
}

const NO_UNACKED: readonly UnackedStanza[] = [];

/** Closes in progress, by connection state object (shared by every scoped context). */
const ENDINGS = new WeakMap<ConnState, Promise<void>>();

export interface LiveContextDeps {
  config: Config;
  log: Logger;
  bus: Bus;
  stores: Stores;
  /** Writes connection snapshots through the shards' leases. */
  snapshots: SnapshotWriter;
  table: ConnectionTable;
  chain: HandlerChain;
  /** Whether a stanza may skip its recipient's shard inbox (local delivery). */
  local: LocalDelivery;
  /** Two-hop delivery to other members' connections (absent: off, or the bus cannot). */
  direct?: DirectDelivery;
  /** A node's own edge (absent: not a node). */
  ownEdge?: OwnEdgeShards;
  /** Last sampled unread entries per owned shard. */
  inboxLags: ReadonlyMap<number, number>;
  metrics: SessionMetrics;
  /** Deadlines of BOSH connections (absent: nothing times their requests out). */
  boshTimers?: BoshTimers;
}

export class LiveContext implements SessionContext {
  readonly config: Config;
  readonly log: Logger;
  readonly stores: Stores;
  readonly domain: string;
  readonly observe: CoreObserver;
  private pending: Promise<void>[] = [];
  /** Numbers the deliveries of the entry being applied (beginEntry). */
  private origins: OriginCounter | undefined;
  /** The origin the routed stanza being applied carries, if it is one (beginEntry). */
  private routedOrigin: string | undefined;
  private readonly failures: unknown[] = [];
  private readonly afterStored: (() => Promise<unknown>)[] = [];
  /** Connections whose durable state this unit changed by sending to them (touched()). */
  private readonly touchedConns = new Set<ConnState>();
  /** Whether this unit may take other connections' turns (holdOthersForDelivery). */
  private holding = false;
  /** Other connections whose turns this unit holds, by id. */
  private readonly held = new Map<string, HeldConn>();
  /**
   * XEP-0198 stanzas this unit counted in the states of connections whose turns it holds, not
   * stored yet: each is stored with its connection's snapshot (saveHeld, takeUnacked).
   */
  private readonly unacked = new Map<ConnState, UnackedStanza[]>();
  /**
   * The unit's own XEP-0198 connection, in a unit of deliveries to it: its queue stanzas wait
   * for the unit's snapshot, which stores them (keepQueueWithSnapshot).
   */
  private queuedWithSnapshot: ConnState | undefined;

  constructor(readonly deps: LiveContextDeps) {
    this.config = deps.config;
    this.log = deps.log;
    this.stores = deps.stores;
    this.domain = deps.config.domain;
    this.observe = deps.metrics.observer;
  }

  /** A fresh context for one unit of work, with its own writes to flush. */
  scoped(): LiveContext {
    return new LiveContext(this.deps);
  }

  now(): number {
    return Date.now();
  }

  overloaded(shard: number): boolean {
    return (this.deps.inboxLags.get(shard) ?? 0) > this.config.maxInboxLagEntries;
  }

  /** Remembers a write of this unit; its failure is kept for flush() (never unhandled). */
  track(promise: Promise<unknown>): void {
    this.pending.push(
      promise.then(
        () => undefined,
        (err: unknown) => void this.failures.push(err),
      ),
    );
  }

  /** Connections this unit sent to whose durable state changed by it (send()). */
  touched(): ReadonlySet<ConnState> {
    return this.touchedConns;
  }

  afterEffects(effect: () => Promise<unknown>): void {
    this.afterStored.push(effect);
  }

  /**
   * Waits until every write of this unit is stored, then runs the afterEffects callbacks and
   * waits for their writes too; throws the first write that failed.
   */
  async flush(): Promise<void> {
    for (;;) {
      while (this.pending.length > 0) {
        const pending = this.pending;
        this.pending = [];
        await Promise.all(pending);
      }
      if (this.failures.length > 0) throw this.failures[0];
      if (this.afterStored.length === 0) return;
      for (const effect of this.afterStored.splice(0)) this.track(effect());
    }
  }

  send(conn: ConnState, element: Element | string): void {
    const d = typeof element === "string" ? element : withClientNamespace(element).toString();
    if (!conn.sm && !conn.bosh) return this.writeToClient(conn, d);
    const origin = this.takeOrigin();
    this.sendKept(conn, d, origin, origin !== undefined && origin === this.routedOrigin);
  }

  /**
   * send() to another connection whose turn this unit holds (holdForDelivery). Its repeat is
   * dropped as a routed stanza's is: this unit's entry may be applied again (its snapshot, or
   * its acknowledgement, not stored when the member died) after the held connection's state,
   * saved first, recorded the delivery.
   */
  sendHeld(conn: ConnState, d: string): void {
    this.sendKept(conn, d, this.takeOrigin(), true);
  }

  /** send() to a connection that keeps what it is sent; `guarded`: drop it if a repeat. */
  private sendKept(conn: ConnState, d: string, origin: string | undefined, guarded: boolean): void {
    // What is sent to these is kept in their state (XEP-0198's counters and queue, BOSH's
    // queue), so a repeat (its sender's entry applied again after a crash, bus/origin.ts) is
    // dropped here, before it is counted or queued: the edge's own drop comes too late for
    // the count, and never sees a BOSH session's frames. The record is in the state it guards,
    // saved with it, so the next owner of the shard knows what was delivered. Only a routed
    // stanza's delivery can come again in another entry; an entry of the connection's own
    // applied again starts from the state saved before it, record included, so its frames are
    // not recorded (nor is the state changed, and saved, for an <a/> answering the client).
    if (guarded && origin !== undefined) {
      const recent = rememberOrigin(conn.recentOrigins, origin);
      if (recent === undefined) return;
      conn.recentOrigins = recent;
    }
    // Saved even when another connection's unit sent it: before that unit's own snapshot when
    // it held the connection's turn (saveHeld), else after it (packet-processor.ts).
    this.touchedConns.add(conn);
    // XEP-0198: counted and kept until acked; not written while the session hibernates.
    if (conn.sm) smSend(this, conn, d, origin);
    else this.writeFrame(conn, d, origin);
  }

  /** Lets this unit take other connections' turns to deliver to them (PacketProcessor units). */
  holdOthersForDelivery(): void {
    this.holding = true;
  }

  /**
   * Keeps stanza `seq` of `conn`'s XEP-0198 session until the client acknowledges it
   * (SmQueueStore). A stanza must be in the queue before anything that reads the queue or
   * counts against it (a resumption resends from the queue, and the client's `h` may count the
   * stanza) can be applied. So it is stored at once, ahead of the frame on the same Redis
   * connection, except for a connection whose turn this unit holds, whose frames wait for its
   * save (saveHeld), and for the unit's own connection in a unit of deliveries
   * (keepQueueWithSnapshot): those stanzas are stored by the connection's snapshot write, one
   * script call for both.
   */
  keepUnacked(conn: ConnState, smId: string, seq: number, stanza: string): void {
    if (this.unsavedHold(conn) === undefined && conn !== this.queuedWithSnapshot) {
      this.track(this.stores.smQueues.push(conn.shard, smId, seq, stanza));
      return;
    }
    const kept = this.unacked.get(conn);
    if (kept) kept.push({ smId, seq, stanza });
    else this.unacked.set(conn, [{ smId, seq, stanza }]);
  }

  /**
   * In a unit that only delivers stanzas to its own connection (`route` entries), the stanzas
   * for `conn`'s XEP-0198 queue are stored by the unit's snapshot write (takeUnacked) rather
   * than each on its own: one fenced call instead of two. Their frames are written at once,
   * as before: whatever could read the queue or count against it after them (the client's
   * acknowledgement, a resumption, a close from the edge) comes through the same inbox, behind
   * this unit, so it finds them stored; and a member dying before the snapshot leaves the
   * entries to be applied again, the frames' repeats dropped by the edge by their origins.
   */
  keepQueueWithSnapshot(conn: ConnState): void {
    if (conn.sm) this.queuedWithSnapshot = conn;
  }

  /**
   * Stores the queue stanzas keepQueueWithSnapshot kept that no snapshot write took (the unit
   * stores no snapshot of that connection), as keepUnacked would have at once; true if there
   * were any (the caller flushes them before the unit's snapshot writes).
   */
  storeQueueKept(): boolean {
    const conn = this.queuedWithSnapshot;
    if (!conn) return false;
    this.queuedWithSnapshot = undefined;
    const kept = this.takeUnacked(conn);
    for (const { smId, seq, stanza } of kept)
      this.track(this.stores.smQueues.push(conn.shard, smId, seq, stanza));
    return kept.length > 0;
  }

  /** The stanzas keepUnacked kept for `conn`, for the write of its snapshot (or its end). */
  takeUnacked(conn: ConnState): readonly UnackedStanza[] {
    const kept = this.unacked.get(conn);
    if (!kept) return NO_UNACKED;
    this.unacked.delete(conn);
    return kept;
  }

  /**
   * Takes `conn`'s turn if it is free now (never waiting for it), so that a stanza for it may
   * change its stored state from here: XEP-0198's count and queue. The unit saves it with its
   * own snapshot (or before it), then writes its frames and gives its turn back (saveHeld); a unit that
   * fails first puts it back as it was, its client having seen none of it (releaseHeld).
   * False: the stanza must go through the connection's inbox.
   */
  holdForDelivery(conn: ConnState): boolean {
    if (this.held.has(conn.connId)) return true;
    if (!this.holding) return false;
    const release = this.deps.table.tryHold(conn.connId);
    if (!release) return false;
    this.held.set(conn.connId, {
      conn,
      copy: DurableCopy.of(conn),
      release,
      saved: false,
      frames: [],
    });
    return true;
  }

  /** Whether this unit took `conn`'s turn (holdForDelivery): it saves it itself (saveHeld). */
  tookTurnOf(conn: ConnState): boolean {
    return this.held.get(conn.connId)?.conn === conn;
  }

  /** The hold of `conn` by this unit, while it is not saved. On every frame written. */
  private unsavedHold(conn: ConnState): HeldConn | undefined {
    if (this.held.size === 0) return undefined;
    const held = this.held.get(conn.connId);
    return held !== undefined && held.conn === conn && !held.saved ? held : undefined;
  }

  /**
   * Saves the connections this unit holds, once the writes of the stanzas it sent them are
   * stored (flush) and before the unit's own snapshot, which marks its entries applied: a
   * member dying in between leaves those entries to be applied again, and the held
   * connections' saved origins drop the repeats (sendHeld). Where the store writes several
   * shards in one step, the unit's own snapshot (`own`, if it writes one) goes in that same
   * step instead, all or nothing: one script call, and the order is kept by construction.
   * True when `own` was stored so; false when the caller must store it now. Each saved
   * connection gets its frames and its turn back at once: it is never put back from here on.
   */
  async saveHeld(own?: SnapshotSave): Promise<boolean> {
    if (this.held.size === 0) return false; // most units: no array made
    const unsaved = [...this.held.values()].filter((held) => !held.saved);
    if (unsaved.length === 0) return false;
    for (const { conn } of unsaved) {
      // Its shard was handed over meanwhile (ShardHost.stop forgets its connections): what
      // this unit sent it is stored nowhere, so the unit must not be marked applied. Applied
      // again, it finds the connection gone and routes the stanza to its inbox.
      if (this.deps.table.get(conn.connId) !== conn)
        throw new Error(`connection ${conn.connId} left this member while its turn was held`);
    }
    const saves: SnapshotSave[] = unsaved.map((held) => {
      const { conn } = held;
      // Where the step can, it writes the frames too: a member dying once it is stored would
      // otherwise leave stanzas the state counts (and remembers the origins of, so that the
      // sender's entry applied again drops them) never written to the client.
      const frames =
        held.frames.length > 0 ? transportOf(conn).withSave(this, conn, held.frames) : undefined;
      if (frames) held.frames = [];
      return {
        shard: conn.shard,
        connId: conn.connId,
        snapshot: JSON.stringify(conn),
        unacked: this.takeUnacked(conn),
        frames,
      };
    });
    const { snapshots } = this.deps;
    if (own && snapshots.writesTogether) {
      await snapshots.saveTogether([...saves, own]);
      for (const held of unsaved) this.heldSaved(held);
      return true;
    }
    const stored = unsaved.map((held, i) => {
      const { shard, connId, snapshot, unacked, frames } = saves[i];
      return snapshots.save(shard, connId, snapshot, undefined, unacked, frames).then(() => {
        this.heldSaved(held);
      });
    });
    // Every save settled before a failure is reported: releaseHeld must know which are stored.
    const failed = (await Promise.allSettled(stored)).find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    return false;
  }

  /**
   * A held connection's state is stored: its frames go out (if the save did not write them)
   * and its turn is given back.
   */
  private heldSaved(held: HeldConn): void {
    held.saved = true;
    this.deps.table.markUnsaved(held.conn.connId, false);
    for (const [d, origin] of held.frames) this.writeFrame(held.conn, d, origin);
    held.frames = [];
    held.release();
  }

  /**
   * Ends this unit's holds. A held connection not saved (the unit failed) gets its state from
   * before the unit back, its client having been written none of it: the unit is applied
   * again, or its entries are left to the next owner, and either delivers to it again.
   */
  releaseHeld(): void {
    for (const held of this.held.values()) {
      if (held.saved) continue;
      const { conn } = held;
      if (this.deps.table.get(conn.connId) === conn) this.deps.table.set(held.copy.restore());
      held.release();
    }
    this.held.clear();
  }

  /**
   * Writes a frame to the connection's client, outside stream management's accounting. To a
   * connection held by this unit (an XEP-0198 <r/>), without an origin: taking one from this
   * unit's entry would number its later deliveries by the held connection's state, which an
   * application of the entry elsewhere would not repeat.
   */
  writeToClient(conn: ConnState, d: string): void {
    this.writeFrame(conn, d, this.unsavedHold(conn) ? undefined : this.takeOrigin());
  }

  /** writeToClient for a frame whose origin the caller took (send). */
  writeFrame(conn: ConnState, d: string, origin: string | undefined): void {
    const held = this.unsavedHold(conn);
    if (held) held.frames.push([d, origin]);
    else transportOf(conn).write(this, conn, d, origin);
  }

  /**
   * The entry whose effects this unit issues now (packet-processor.ts): its deliveries and
   * routes are numbered from it (origin.ts), so that applying it again delivers nothing twice.
   * `carried`: the origin a routed stanza brought along, which its deliveries keep.
   */
  beginEntry(connId: string, entryId: string, carried?: string): void {
    const routed = carried === undefined ? undefined : OriginCounter.carried(carried);
    this.origins = routed ?? new OriginCounter(connId, entryId);
    this.routedOrigin = routed && carried;
  }

  takeOrigin(): string | undefined {
    return this.origins?.take();
  }

  async deliver(connId: string, stanza: Element, target?: DirectTarget): Promise<void> {
    const { shard } = parseConnId(connId);
    const d = withClientNamespace(stanza).toString();
    const { local, direct } = this.deps;
    // Local delivery skips Redis: the same path as a `route` packet.
    if (local.allows(shard)) return deliverRouted(this, this.deps.table, connId, d, true);
    if (direct && target?.edge !== undefined && !local.serves(shard)) {
      if (direct.allows(shard))
        return this.track(this.writeDirect(direct, shard, connId, d, target));
      this.deps.metrics.directDeliveries.inc({ path: "held" });
    }
    this.track(this.routeViaInbox(connId, d));
  }

  /**
   * Two-hop delivery: the stanza to the connection's edge, or (decided in the same Redis step)
   * into its shard inbox as a `route`, or back as `undelivered` when the edge is gone. Either
   * way with the origin the route would carry, so the edge drops a repeat.
   */
  private async writeDirect(
    direct: DirectDelivery,
    shard: number,
    connId: string,
    stanza: string,
    target: DirectTarget,
  ): Promise<void> {
    const write = {
      bareJid: target.bareJid,
      resource: target.resource,
      connId,
      edge: target.edge as string,
      stanza,
      origin: this.takeOrigin(),
    };
    if (this.log.isLevelEnabled("trace")) this.log.trace({ connId, out: stanza }, "direct");
    let outcome;
    // Tracked by local delivery too, should this member take the shard meanwhile.
    await this.deps.local.viaInbox(shard, async () => {
      outcome = await direct.write(shard, write);
      return outcome.path === "edge" ? "0-0" : outcome.inboxId;
    });
    this.deps.metrics.directDeliveries.inc({ path: outcome!.path });
  }

  /** A `route` packet into the inbox of the connection's shard; `queued`: see packets.ts q. */
  routeViaInbox(connId: string, stanza: string, queued = false): Promise<void> {
    const { shard } = parseConnId(connId);
    const packet: ShardPacket = { k: "route", c: connId, d: stanza };
    if (queued) packet.q = "1";
    const origin = this.takeOrigin();
    if (origin !== undefined) packet.o = origin;
    const write = () => this.deps.bus.toShard(shard, packet);
    const direct = this.deps.direct;
    return this.deps.local.viaInbox(shard, direct ? () => direct.viaInbox(shard, write) : write);
  }

  allowDirect(conn: ConnState): void {
    if (!this.deps.direct) return;
    this.afterEffects(async () => {
      // Judged on the state after every entry of this unit: an <enable/> or an unavailable
      // presence in the same unit has been applied by now.
      if (conn.stage !== "bound" || !conn.available || conn.sm || isBosh(conn)) return;
      await this.stores.routes.update(
        conn.bareJid as string,
        conn.resource as string,
        conn.connId,
        {
          edge: conn.edgeId,
        },
      );
    });
  }

  requestResume(conn: ConnState, request: ResumeRequest): void {
    const shard = Number(request.previd.slice(0, request.previd.indexOf(".")));
    this.track(
      this.deps.bus.toShard(shard, {
        k: "resume",
        c: conn.connId,
        e: conn.edgeId,
        d: JSON.stringify(request),
      }),
    );
  }

  /** Asks an edge to end a socket the session knows nothing about. */
  toEdgeClose(edgeId: string, connId: string): void {
    this.track(this.deps.bus.toEdge(edgeId, { k: "close", c: connId }));
  }

  async kick(connId: string, condition: StreamErrorCondition): Promise<void> {
    const { shard } = parseConnId(connId);
    this.track(this.deps.bus.toShard(shard, { k: "kick", c: connId, d: condition }));
  }

  close(conn: ConnState, condition?: StreamErrorCondition, text?: string): void {
    if (conn.stage === "closed") return;
    if (!conn.streamId) {
      // RFC 6120 §4.9.1.1: a stream error needs our stream header first.
      conn.streamId = randomId(12, "base64url");
      this.send(conn, openElement(this, conn));
    }
    if (condition) {
      this.send(conn, new StreamError(condition, text).toElement());
      this.deps.metrics.streamErrors.inc({ condition });
    }
    this.deps.metrics.closes.inc({ condition: condition ?? "none" });
    this.send(conn, closeElement());
    transportOf(conn).end(this, conn);
    this.track(this.endConnection(conn));
  }

  /**
   * Forgets a connection: unavailable presence and other disconnect hooks for a bound one,
   * its route, its snapshot. Used for closes we start and for sockets the edge saw go away.
   * The connection leaves the table only once all of that is stored, so a failure leaves it
   * in place for the redelivered packet to finish the job.
   */
  endConnection(conn: ConnState): Promise<void> {
    // Idempotent: a close packet arriving while our own close is still storing its effects
    // joins it; one whose attempt failed starts again.
    let ending = ENDINGS.get(conn);
    if (!ending) {
      ending = this.runEndConnection(conn);
      ENDINGS.set(conn, ending);
      ending.catch(() => ENDINGS.delete(conn));
    }
    return ending;
  }

  private async runEndConnection(conn: ConnState): Promise<void> {
    const wasBound = conn.stage === "bound" || conn.boundBeforeClose === true;
    conn.stage = "closed";
    conn.boundBeforeClose = wasBound;
    if (wasBound && conn.bareJid && conn.resource) {
      for (const hook of this.deps.chain.onDisconnect) {
        try {
          await hook(this, conn);
        } catch (err) {
          if (isStoreError(err)) throw err; // the close is retried with the batch
          this.log.error({ err, connId: conn.connId }, "disconnect hook failed");
        }
      }
      // Every binding naming this connection, not only the current resource: a redelivered
      // bind may have left another one behind.
      for (const bound of await this.stores.routes.list(conn.bareJid)) {
        if (bound.connId === conn.connId)
          await this.stores.routes.unbind(conn.bareJid, bound.resource, conn.connId);
      }
    }
    // XEP-0198: what the client never acknowledged is handled as undeliverable.
    if (conn.sm) await settleUnacked(this, conn);
    await this.deps.snapshots.remove(conn.shard, conn.connId);
    this.deps.table.delete(conn.connId);
  }
}
