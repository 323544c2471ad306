// RFC 6121 §8 per-recipient order across an XEP-0198 §5 resumption: stanzas routed to the old
// connection id before the move must reach the client before stanzas routed to the new id
// after it. Rolling restarts hit this (clients resuming from a draining edge under CPU load got
// message 15 after 16 and 17). The real LiveContext, connection table, packet processor and
// stores on a private Redis, with the test in the place of the shard's read loop, so that it
// can hand the processor the exact batches of that interleaving.
//
// Local delivery is never allowed here (no shard is served): that is the state of a shard
// while the entry being applied is one this member routed through its inbox itself, as in the
// failing runs, and it is what sent the stanza for the old id through the inbox a second time.
import assert from "node:assert/strict";
import type { EdgePacket, ShardPacket } from "../../services/shared/bus/packets.js";
import { parseConnId } from "../../services/shared/conn-id.js";
import type { Backend } from "../../services/shared/wiring.js";
import { newConnState, type ConnState } from "../../services/session/core/connection.js";
import { newSmState } from "../../services/session/features/sm/sm-state.js";
import { ConnectionTable } from "../../services/session/io/connection-table.js";
import { PacketProcessor } from "../../services/session/io/packet-processor.js";
import { liveSessionOnShard0, messageFromBob, shard0Entry } from "../helpers/live-session.js";
import { until } from "../helpers/poll.js";
import { startRedis, type RedisServer } from "../helpers/redis-server.js";

const ALICE = "alice@localhost";
/** Alice's connection before the resumption, on the draining edge e1, shard 0. */
const OLD = "e1.0.old";
/** The socket she resumes on, on edge e2 (its own shard is 1; the session stays on 0). */
const RESUMING = "e2.1.resuming";

const message = (n: number) => messageFromBob(`${ALICE}/phone`, n);

describe("per-recipient order across a resumption (XEP-0198 §5, RFC 6121 §8)", function () {
  this.timeout(20000);
  let server: RedisServer;
  let db = 0;
  let backend: Backend;
  let table: ConnectionTable;
  let processor: PacketProcessor;
  let stop: AbortController;
  let reading: Promise<void>[];
  /** What the session wrote to each edge, in order. */
  let edges: Map<string, EdgePacket[]>;

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });

  beforeEach(async () => {
    stop = new AbortController();
    ({ backend, table, processor } = await liveSessionOnShard0(
      `${server.url}/${++db}`,
      stop.signal,
    ));
    edges = new Map([
      ["e1", []],
      ["e2", []],
    ]);
    reading = [];
    for (const [edge, packets] of edges) {
      reading.push(
        backend.bus.consumeEdge(
          edge,
          async (batch) => void packets.push(...batch.filter((p) => p.c !== "probe.0.0")),
          stop.signal,
        ),
      );
      // Writes never create an edge inbox: probe until the reader has made it.
      await until(
        () => backend.bus.toEdge(edge, { k: "data", c: "probe.0.0", d: "<probe/>" }),
        `edge ${edge}'s inbox`,
      );
    }
    // What the processor routes through shard 0's inbox is applied by it, as the read loop does.
    reading.push(
      backend.bus.consumeShards([0], "s1", (batch) => processor.handleBatch(batch), stop.signal),
    );
  });

  afterEach(async () => {
    stop.abort();
    await Promise.all(reading);
    await backend.close();
  });

  /** Alice/phone bound on OLD with resumable stream management; its sm id. */
  async function aliceOnOldConnection(): Promise<string> {
    const old: ConnState = newConnState(OLD, "e1", 0, Date.now());
    Object.assign(old, { stage: "bound", bareJid: ALICE, resource: "phone", available: true });
    old.sm = newSmState(0, true);
    assert.equal((await backend.routes.bind(ALICE, "phone", OLD, 10)).ok, true);
    table.set(old);
    return old.sm.id;
  }

  function resume(smId: string): ShardPacket {
    const d = JSON.stringify({ previd: smId, h: 0, jid: ALICE });
    return { k: "resume", c: RESUMING, e: "e2", d };
  }

  /** The stanza ids (or element names) written to connection `connId`, in order. */
  function written(connId: string): string[] {
    return (edges.get(parseConnId(connId).edgeId) ?? []).flatMap((p) =>
      p.c === connId && p.k === "data"
        ? [/ id="(m\d+)"/.exec(p.d)?.[1] ?? (/^<(\w+)/.exec(p.d)?.[1] as string)]
        : [],
    );
  }

  it("delivers a stanza for the old id, applied in the moved session's turn, before a later one for the new id", async () => {
    const smId = await aliceOnOldConnection();
    await processor.handleBatch([shard0Entry("1-1", resume(smId))]);
    const moved = table.successorOf(OLD) as string;
    assert.ok(table.get(moved), "the session moved");
    // m1 was routed to the old id while the session was being moved; m2 to the new one after.
    await processor.handleBatch([
      shard0Entry("2-1", { k: "route", c: OLD, d: message(1) }),
      shard0Entry("2-2", { k: "route", c: moved, d: message(2) }),
    ]);
    await until(() => written(moved).length >= 3, "m1 and m2 written");
    assert.deepEqual(written(moved), ["resumed", "m1", "m2"]);
  });

  it("lets nothing for the new id overtake the old id's entries read before the move", async () => {
    const smId = await aliceOnOldConnection();
    await processor.handleBatch([shard0Entry("1-1", { k: "route", c: OLD, d: message(0) })]);
    await until(() => written(OLD).length === 1, "m0 written to the old connection");
    // The old connection is busy (an earlier unit of its own), so the next two batches are read
    // while the move has not started: both are keyed by the old id.
    let endBusyUnit!: () => void;
    const busy = new Promise<void>((resolve) => (endBusyUnit = resolve));
    void table.withConn(OLD, () => busy);
    const resumed = processor.handleBatch([shard0Entry("2-1", resume(smId))]);
    // The draining edge gives m0 back (its socket is gone), and a stanza for the old id follows.
    const oldIds = processor.handleBatch([
      shard0Entry("3-1", { k: "undelivered", c: OLD, e: "e1", d: message(0) }),
      shard0Entry("3-2", { k: "route", c: OLD, d: message(1) }),
    ]);
    endBusyUnit();
    await until(() => table.successorOf(OLD) !== undefined, "the move started", 5000, 1);
    const moved = table.successorOf(OLD) as string;
    // Routed to the new id once it is bound: read after the move, keyed by the new id.
    const newId = processor.handleBatch([
      shard0Entry("4-1", { k: "route", c: moved, d: message(2) }),
    ]);
    await Promise.all([resumed, oldIds, newId]);
    await until(() => written(moved).length >= 4, "m0, m1 and m2 written");
    // m0 once (resent from the queue; the copy given back is dropped), then m1, then m2.
    assert.deepEqual(written(moved), ["resumed", "m0", "m1", "m2"]);
  });
});
