// Applies batches of shard-inbox entries. The unit of work is one connection's entries of a
// batch, run in that connection's turn (ConnectionTable.withConn), so connections progress
// independently: a slow one (a PLAIN derivation, a login with a large roster) holds up only
// its own later entries, never the other connections of its batch or of later batches (the
// bus hands over the next batches while this one is in progress). The one exception is short:
// a unit that delivers to an XEP-0198 session of this member may hold that session's free turn
// until it has saved it (LiveContext.holdForDelivery), one write. Units of one batch run side
// by side, so their Redis commands share pipelines. A unit waits until every effect it issued
// is stored, then saves the connection's snapshot (two phases, see runUnit), and its entries
// are acknowledged in that same fenced write when the snapshot is the last thing it stores,
// otherwise once all of it is (the bus's batched acknowledgements). A unit that fails is rolled
// back in memory and tried again in place, so nothing later of that connection can overtake it.
import { delay, retryDelayMs } from "../../shared/async/delay.js";
import type { ShardEntry } from "../../shared/bus/packets.js";
import { compareEntryIds } from "../../shared/bus/packets.js";
import { entryAgeSeconds } from "../../shared/bus/entry-age.js";
import { FencedError } from "../../shared/leases/fenced-error.js";
import { isStoreError } from "../../shared/redis/errors.js";
import type { StreamErrorCondition } from "../../shared/xmpp-errors.js";
import { DurableCopy, newConnState, type ConnState, type Stage } from "../core/connection.js";
import { handleFrame } from "../core/dispatch.js";
import type { HandlerChain } from "../core/handler-chain.js";
import { countEntry, type SessionMetrics } from "../session-metrics.js";
import type { ConnectionTable } from "./connection-table.js";
import type { LiveContext } from "./live-context.js";
import { deliverRouted, rerouteFromGone } from "./reroute.js";
import type { SnapshotSave, SnapshotWriter } from "./snapshot-writer.js";
import { applyBosh } from "./bosh/bosh-apply.js";
import {
  applyResume,
  applyResumeResult,
  hibernate,
  isSettled,
  unitKeyOf,
  type SmUnitProgress,
} from "./stream-management.js";

/** How a unit ended: the other connections it changed, and whether its entries are acked. */
interface UnitDone {
  others: readonly ConnState[];
  /** Acknowledged by its snapshot's write (SnapshotWriter.save with ackIds). */
  acked: boolean;
}
// Most units (chat without XEP-0198 or BOSH) touch nothing: no object per unit then.
const UNTOUCHED: UnitDone = Object.freeze({ others: Object.freeze([]), acked: false });
const ACKED_WITH_SNAPSHOT: UnitDone = Object.freeze({ others: Object.freeze([]), acked: true });

/** What a unit did that counts only once it is stored. */
interface UnitProgress extends SmUnitProgress {
  /** Route packets with q applied (ConnectionTable.queuedRouteApplied). */
  queuedRoutesApplied: number;
}

/**
 * Whether `entry` was applied to `conn` already: an inbox entry at or below the last one
 * applied, or one its edge first handed over in process (`i`) at or below the last such packet
 * applied. One handed over in process is handed over once (if its member cannot finish it, it
 * goes to the inbox, with `i`), and its id is no inbox position: it is never a repeat here.
 */
function isRepeat(entry: ShardEntry, conn: ConnState): boolean {
  if (entry.inProcess) return false;
  // First handed over in process: a repeat if this state applied it there already.
  const first = "i" in entry.packet ? entry.packet.i : undefined;
  const applied = conn.lastInProcessId;
  if (first !== undefined && applied !== undefined && compareEntryIds(first, applied) <= 0)
    return true;
  return compareEntryIds(entry.id, conn.lastEntryId) <= 0;
}

/** Records `entry` as the last one `conn` applied. */
function markApplied(entry: ShardEntry, conn: ConnState): void {
  if (entry.inProcess) conn.lastInProcessId = entry.id;
  else conn.lastEntryId = entry.id;
}

/** Stages of a connection that has not bound a resource yet (RFC 6120 §4–§7). */
const BEFORE_BIND = new Set<Stage>(["connected", "opened", "authenticated", "restarted"]);

/**
 * Whether a unit's new state is kept in memory only, without a snapshot: a login of this
 * process's own socket (its packets handed over in process) that has not bound a resource.
 * Whatever ends this process ends that socket too, and such a connection has nothing for a
 * next owner to end (no binding, no presence, no stream management); the snapshot would serve
 * only a shard handed over while the process lives, which saves it then (shard-host.ts). A
 * member that loses the lease while alive leaves the next owner without it: the socket's next
 * packet finds no connection there, and the edge is told to close it. BOSH keeps its state in
 * its snapshot, and packets from the inbox are saved as ever.
 */
function keptInMemory(conn: ConnState, connId: string, entries: readonly ShardEntry[]): boolean {
  return (
    conn.connId === connId &&
    BEFORE_BIND.has(conn.stage) &&
    conn.bosh === undefined &&
    entries.every((e) => e.inProcess)
  );
}

export class PacketProcessor {
  constructor(
    private readonly base: LiveContext,
    private readonly chain: HandlerChain,
    private readonly table: ConnectionTable,
    private readonly snapshots: SnapshotWriter,
    private readonly metrics: SessionMetrics,
    /** Stops retrying failed units: their entries stay pending for the next owner. */
    private readonly signal: AbortSignal,
    /**
     * Whether this member still serves `shard` (holds its lease): a unit of a shard it lost is
     * not retried; the new owner handles its entries.
     */
    private readonly serves: (shard: number) => boolean = () => true,
  ) {}

  /**
   * Applies `batch`, acknowledging each connection's entries as soon as they are applied and
   * stored. Resolves once all of them are; rejects only when stopping, after every unit has
   * settled (none is left writing). Given `acknowledged` (ShardBatchHandler), a unit whose
   * snapshot is its last write acknowledges its entries in that write and reports them there;
   * without it, every unit's entries go to `ack`.
   */
  async handleBatch(
    batch: ShardEntry[],
    ack: (entries: readonly ShardEntry[]) => void = () => undefined,
    acknowledged?: (entries: readonly ShardEntry[]) => void,
  ): Promise<void> {
    // A packet handed over in process is no inbox batch.
    if (!batch[0]?.inProcess) {
      this.metrics.batches.inc();
      this.metrics.batchEntries.observe(batch.length);
    }
    const byConn = new Map<string, ShardEntry[]>();
    for (const entry of batch) {
      const key = unitKeyOf(this.table, entry.packet);
      const list = byConn.get(key);
      if (list) list.push(entry);
      else byConn.set(key, [entry]);
    }
    // Queued synchronously, in batch order: a connection's units run in the order read.
    const units = await Promise.allSettled(
      [...byConn].map(async ([connId, entries]) => {
        // Entries handed over in process are in no inbox: nothing to acknowledge with them.
        const ackWithSnapshot = acknowledged !== undefined && !entries[0].inProcess;
        const done = await this.table.withConn(connId, () =>
          this.runUnit(connId, entries, ackWithSnapshot),
        );
        if (done.acked) {
          acknowledged?.(entries);
          return;
        }
        // Outside the unit's turn: two units that each changed the other's connection must
        // not wait for each other's turn.
        if (done.others.length > 0) await this.saveTouched(done.others, entries[0].shard);
        ack(entries);
      }),
    );
    const failed = units.find((u) => u.status === "rejected");
    if (failed) throw failed.reason;
  }

  /**
   * One connection's entries, until they are applied and stored. Two phases, and the order
   * matters: the snapshot advances the connection's lastEntryId, so it vouches for the effects
   * of every entry up to there. It is written only once all of them are stored; otherwise a
   * crash between the two would make the next owner skip the still-pending entries as applied
   * and their effects would never happen. A unit that changed nothing but the progress
   * fields (most chat: a message sent or delivered) writes no snapshot at all: its
   * acknowledgement alone keeps its entries from being applied again (durableJson, DurableCopy).
   * The acknowledgement is never stored before the snapshot: it rides in the snapshot's own
   * fenced write (`ackWithSnapshot`, one script call for both) only when nothing of the unit
   * is left to store after it, i.e. no XEP-0198 resumption's afterSave writes and no other
   * connection to save (saveTouched); otherwise it is written once those are stored.
   */
  private async runUnit(
    connId: string,
    entries: ShardEntry[],
    ackWithSnapshot: boolean,
  ): Promise<UnitDone> {
    for (let failures = 0; ; failures++) {
      const saved = this.table.get(connId);
      // The rollback copy, in durable form with its progress fields (DurableCopy).
      const before = saved && DurableCopy.of(saved);
      const closedBefore = this.table.wasClosed(connId);
      const ctx = this.base.scoped();
      ctx.holdOthersForDelivery();
      if (saved?.sm && entries.every((e) => e.packet.k === "route"))
        ctx.keepQueueWithSnapshot(saved);
      const unit: UnitProgress = { queuedRoutesApplied: 0, afterSave: [] };
      try {
        const changed = await this.applyEntries(ctx, connId, entries, unit);
        await ctx.flush();
        // Known once the effects are stored: nothing the snapshot write does changes them.
        const own = changed?.connId ?? unit.renamedTo ?? connId;
        const others =
          ctx.touched().size === 0
            ? UNTOUCHED.others
            : [...ctx.touched()].filter(
                (c) => c.connId !== own && c.connId !== connId && !ctx.tookTurnOf(c),
              );
        let acked = false;
        let ownSave: SnapshotSave | undefined;
        // Only a connection never saved: no older snapshot of it may outlive this state.
        const neverSaved = before === undefined || this.table.isUnsaved(connId);
        if (changed && neverSaved && keptInMemory(changed, connId, entries)) {
          this.table.markUnsaved(connId, true);
        } else if (changed && (changed.connId !== connId || !before?.sameAs(changed))) {
          acked =
            ackWithSnapshot &&
            unit.afterSave.length === 0 &&
            others.length === 0 &&
            entries.every((e) => e.shard === changed.shard);
          ownSave = {
            shard: changed.shard,
            connId: changed.connId,
            snapshot: JSON.stringify(changed),
            ackIds: acked ? entries.map((e) => e.id) : undefined,
            unacked: ctx.takeUnacked(changed),
          };
        }
        // Queue stanzas no snapshot of this unit stores (keepQueueWithSnapshot): on their own.
        if (ctx.storeQueueKept()) await ctx.flush();
        // The connections it held, before its own snapshot or with it (LiveContext.saveHeld).
        const savedWithHeld = await ctx.saveHeld(ownSave);
        if (ownSave) {
          const { shard, connId: savedId, snapshot, ackIds, unacked } = ownSave;
          if (!savedWithHeld) {
            ctx.track(this.snapshots.save(shard, savedId, snapshot, ackIds, unacked));
            await ctx.flush();
          }
          this.table.markUnsaved(savedId, false);
        }
        // XEP-0198 resumption: the old connection's snapshot goes once the moved one is saved.
        if (unit.afterSave.length > 0) {
          for (const write of unit.afterSave) ctx.track(write());
          await ctx.flush();
        }
        // Counted only now, once: a retried unit applies its queued routes again.
        for (let i = 0; i < unit.queuedRoutesApplied; i++) this.table.queuedRouteApplied(connId);
        // XEP-0198 resumption: the moved session's turn starts only once the units already
        // queued behind this one for the old id are done too. They were read before the move
        // (so keyed by the old id) and deliver to the moved session (reroute.ts): stanzas
        // routed to the new id since must not overtake them (RFC 6121 §8 per-recipient order).
        const release = unit.releaseTurn;
        if (release) void this.table.withConn(connId, async () => release());
        ctx.releaseHeld();
        if (acked) return ACKED_WITH_SNAPSHOT;
        return others.length === 0 ? UNTOUCHED : { others, acked: false };
      } catch (err) {
        unit.releaseTurn?.();
        ctx.releaseHeld();
        // Applied again from the state before, so each entry takes effect once in memory.
        if (unit.renamedTo) this.table.forget(unit.renamedTo);
        if (before === undefined) this.table.forget(connId);
        else this.table.set(before.restore());
        if (!closedBefore) this.table.unmarkClosed(connId);
        const shard = entries[0].shard;
        if (this.signal.aborted || err instanceof FencedError || !this.serves(shard)) throw err;
        ctx.log.error(
          { err, connId, entries: entries.length },
          "shard batch failed; it stays pending",
        );
        await delay(retryDelayMs(failures), this.signal);
        if (this.signal.aborted || !this.serves(shard)) throw err;
      }
    }
  }

  /**
   * The unit's entries are acknowledged only once the connections it changed besides its own
   * are saved: a stanza it queued in another BOSH connection's state (or counted in its
   * XEP-0198 state) would otherwise be lost with this member before that connection's next
   * unit saved it. Each is saved in its own turn, so from a state whose own units are stored.
   * Stanzas other connections' units deliver to such a connection go through its inbox, or
   * are saved by the sending unit itself while it holds the connection's turn (reroute.ts,
   * LiveContext.saveHeld), so what still lands here is a unit keyed by a session's old id after a
   * resumption moved it (their route entries deliver to the moved session): that unit has no
   * snapshot marking its entries applied, so a member dying before this save leaves them
   * pending, and the next owner applies them again (to the binding's holder, in its turn).
   */
  private async saveTouched(others: readonly ConnState[], shard: number): Promise<void> {
    for (let failures = 0; ; failures++) {
      try {
        await Promise.all(
          others.map((other) =>
            this.table.withConn(other.connId, async () => {
              const conn = this.table.get(other.connId);
              if (conn !== other || conn.stage === "closed") return; // ended or moved: saved
              await this.snapshots.save(conn.shard, conn.connId, JSON.stringify(conn));
            }),
          ),
        );
        return;
      } catch (err) {
        if (this.signal.aborted || err instanceof FencedError || !this.serves(shard)) throw err;
        this.base.log.error(
          { err, connections: others.length },
          "saving touched connections failed",
        );
        await delay(retryDelayMs(failures), this.signal);
        if (this.signal.aborted) throw err;
      }
    }
  }

  /** Applies a connection's entries; returns its state to save, if it changed. */
  private async applyEntries(
    ctx: LiveContext,
    connId: string,
    entries: ShardEntry[],
    unit: UnitProgress,
  ): Promise<ConnState | undefined> {
    let touched = false;
    for (const entry of entries) touched = (await this.apply(ctx, entry, unit)) || touched;
    const conn = this.table.get(unit.renamedTo ?? connId);
    return touched && conn && conn.stage !== "closed" ? conn : undefined;
  }

  /** Applies one entry, timed; true when the connection's state changed and must be saved. */
  private async apply(ctx: LiveContext, entry: ShardEntry, unit: UnitProgress): Promise<boolean> {
    // An entry handed over in process waited nowhere; its id holds no time.
    if (!entry.inProcess) this.metrics.entryDelay.observe(entryAgeSeconds(entry.id, Date.now()));
    const done = this.metrics.handlerDuration.startTimer({ kind: entry.packet.k });
    try {
      return await this.applyEntry(ctx, entry, unit);
    } finally {
      done();
    }
  }

  private async applyEntry(
    ctx: LiveContext,
    entry: ShardEntry,
    unit: UnitProgress,
  ): Promise<boolean> {
    const packet = entry.packet;
    countEntry(this.metrics, packet.k);
    // A packet its edge first handed over in process keeps the origins it had there.
    const originEntry = "i" in packet && packet.i !== undefined ? packet.i : entry.id;
    ctx.beginEntry(packet.c, originEntry, packet.k === "route" ? packet.o : undefined);
    // XEP-0198 resumption (stream-management.ts).
    if (packet.k === "resume") return applyResume(ctx, this.table, entry, unit);
    if (packet.k === "resume-result") return applyResumeResult(ctx, this.table, entry);
    // XEP-0124/0206: one HTTP request of a BOSH connection (bosh-apply.ts).
    if (packet.k === "bosh")
      return applyBosh(ctx, entry, {
        table: this.table,
        chain: this.chain,
        watch: (conn) => ctx.deps.boshTimers?.watch(conn),
      });
    const conn = this.table.get(packet.c);
    if (packet.k === "undelivered") {
      // XEP-0198: the stanza is in the session's unacked queue already; its transport is lost.
      if (conn?.sm) return hibernate(ctx, this.table, conn) || (await this.end(ctx, conn));
      if (!conn && (await isSettled(ctx, packet.c))) return false;
      // Its socket is gone or going (the edge said so): end it, then find the stanza a home.
      if (conn && conn.stage !== "closed") await ctx.endConnection(conn);
      await rerouteFromGone(ctx, packet.c, packet.d);
      return false;
    }
    if (packet.k === "open") {
      if (this.table.wasClosed(packet.c)) return false; // delivered again after its close
      if (conn) {
        if (isRepeat(entry, conn)) return false; // delivered twice
        // A new socket under a live id (an edge restarted with the same id and serials): it
        // must never inherit the old connection's login.
        ctx.log.warn({ connId: packet.c }, "connection id reused; ending the old connection");
        await ctx.endConnection(conn);
      }
      const tls = packet.s
        ? { exporter: packet.x, endPoint: packet.t, unique: packet.u }
        : undefined;
      const created = newConnState(packet.c, packet.e, entry.shard, ctx.now(), tls);
      markApplied(entry, created);
      this.table.set(created);
      return true;
    }
    if (!conn) {
      if (packet.k === "route") await deliverRouted(ctx, this.table, packet.c, packet.d);
      // The session has no state for this socket (e.g. it was closed): tell its edge.
      else if (packet.k === "data") ctx.toEdgeClose(packet.e, packet.c);
      // An `open` that arrives later (redelivered or claimed) must not bring it back.
      else if (packet.k === "close") this.table.delete(packet.c);
      return false;
    }
    if (isRepeat(entry, conn)) return false; // already applied
    markApplied(entry, conn);
    switch (packet.k) {
      case "route":
        await deliverRouted(ctx, this.table, packet.c, packet.d);
        if (packet.q) unit.queuedRoutesApplied++;
        return true;
      case "data":
        conn.lastActivityMs = ctx.now();
        await this.safely(ctx, conn, () => handleFrame(ctx, this.chain, conn, packet.d));
        return true;
      case "close":
        // Also when we are already ending it: joins that close, or retries one that failed.
        ctx.log.debug({ connId: conn.connId, reason: packet.d }, "socket closed");
        // XEP-0198: a resumable session outlives its transport for a while.
        if (hibernate(ctx, this.table, conn)) return true;
        await ctx.endConnection(conn);
        return false;
      case "kick":
        ctx.close(conn, packet.d as StreamErrorCondition);
        return false;
    }
  }

  private async end(ctx: LiveContext, conn: ConnState): Promise<false> {
    if (conn.stage !== "closed") await ctx.endConnection(conn);
    return false;
  }

  /**
   * A handler bug must cost one connection, never the batch (it would be redelivered forever);
   * a store failure fails the batch, which is rolled back and delivered again.
   */
  private async safely(ctx: LiveContext, conn: ConnState, work: () => Promise<void>) {
    try {
      await work();
    } catch (err) {
      if (isStoreError(err)) throw err;
      ctx.log.error({ err, connId: conn.connId, jid: conn.bareJid }, "frame handling failed");
      ctx.close(conn, "internal-server-error");
    }
  }
}
