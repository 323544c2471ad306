// The edge's push-back from shards that fall behind (edge/shard-lag.ts, edge/ws/publisher.ts;
// issue 6, item 9): a shard past maxInboxLagEntries gets nothing more from the edge, whose
// connections' packets are held in order within the held-cost bounds, while the other shards go
// on; below half the bound the held packets go, in order. On the in-process bus, no network.
import assert from "node:assert/strict";
import { createEdgeMetrics } from "../../services/edge/edge-metrics.js";
import { ShardLagGate } from "../../services/edge/shard-lag.js";
import type { Connection } from "../../services/edge/ws/connection.js";
import { ShardPublisher } from "../../services/edge/ws/publisher.js";
import type { ShardBacklog } from "../../services/shared/bus/bus.js";
import { MemoryBus } from "../../services/shared/bus/memory-bus.js";
import type { ShardEntry, ShardPacket } from "../../services/shared/bus/packets.js";
import { silentLogger } from "../../services/shared/log.js";

const MAX_LAG = 10;
const FRAME_COST = 1024;

let serial = 0;
function conn(shard: number): Connection {
  return {
    id: `e.${shard}.${++serial}`,
    shard,
    held: [],
    heldCostBytes: 0,
    broken: false,
  } as unknown as Connection;
}

const data = (c: Connection, n: number): ShardPacket => ({
  k: "data",
  c: c.id,
  e: "e",
  d: `<m${n}/>`,
});

function setup(
  shards = [0, 1],
  bounds = { perConnection: 64 * FRAME_COST, edge: 1024 * FRAME_COST },
) {
  const bus = new MemoryBus({ readCount: 1000 });
  const gate = new ShardLagGate(shards, MAX_LAG);
  const overflowed: Connection[] = [];
  const publisher = new ShardPublisher({
    bus,
    maxInflight: 1000,
    maxHeldCostBytesPerConnection: bounds.perConnection,
    maxHeldCostBytes: bounds.edge,
    gate,
    log: silentLogger,
    metrics: createEdgeMetrics({
      connections: () => 0,
      inflightPublishes: () => 0,
      heldFrames: () => 0,
      heldBytes: () => 0,
      boshHeldRequests: () => 0,
      unauthenticatedConnections: () => 0,
      paused: () => false,
      draining: () => false,
      shardInboxes: () => [],
    }),
    onFailure: () => assert.fail("no publish fails here"),
    onOverflow: (c) => overflowed.push(c),
  });
  const read: ShardEntry[] = [];
  return {
    bus,
    gate,
    publisher,
    overflowed,
    read,
    /** What the edge's sampler does once: sample every shard, open or close gates. */
    async sample(): Promise<number[]> {
      const mark = gate.mark();
      const samples = new Map<number, ShardBacklog>();
      for (const shard of gate.shards) samples.set(shard, await bus.shardBacklog(shard));
      const opened = gate.sampled(samples, mark);
      if (opened.length > 0) publisher.shardsOpened();
      return opened;
    },
    /** A session reads everything stored in `shard`'s inbox. */
    async drain(shard: number): Promise<void> {
      const count = await bus.shardLag(shard);
      if (count === 0) return;
      const abort = new AbortController();
      let got = 0;
      await bus.consumeShards(
        [shard],
        "s",
        async (batch) => {
          read.push(...batch);
          if ((got += batch.length) >= count) abort.abort();
        },
        abort.signal,
      );
    },
  };
}

/** Lets the bus's resolved writes settle (MemoryBus resolves on the next microtasks). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("edge push-back from shards far behind", () => {
  it("gives a stanza back as undelivered behind the frames and close its connection still holds", async () => {
    const t = setup();
    const a = conn(0);
    for (let i = 0; i < MAX_LAG + 3; i++) t.publisher.publish(a, data(a, i), FRAME_COST);
    t.publisher.publish(a, { k: "close", c: a.id, e: "e", d: "slow-consumer" });
    await settle();
    assert.equal(t.publisher.holding(a.id), a, "a still holds packets after its close");
    let stored = false;
    const returned = t.publisher
      .publishBehind(a, { k: "undelivered", c: a.id, e: "e", d: "<message/>" })
      .then(() => (stored = true));
    await settle();
    assert.equal(stored, false, "held, not written ahead of a's frames");
    for (let round = 0; round < 4 && !stored; round++) {
      await t.drain(0);
      await t.sample();
      await settle();
    }
    await returned;
    await t.drain(0);
    const kinds = t.read.map((e) => (e.packet.k === "data" ? "data" : e.packet.k));
    assert.deepEqual(kinds.slice(-2), ["close", "undelivered"]);
    assert.equal(kinds.filter((k) => k === "data").length, MAX_LAG + 3);
    assert.equal(t.publisher.holding(a.id), undefined);
  });

  it("stops publishing to a shard at maxInboxLagEntries, holds its frames in order, and lets other shards through", async () => {
    const t = setup();
    const a = conn(0);
    const b = conn(1);
    t.publisher.publish(a, { k: "open", c: a.id, e: "e" });
    for (let i = 0; i < 25; i++) t.publisher.publish(a, data(a, i), FRAME_COST);
    // Under the bound (each shard gets at most the bound from one edge between samples).
    for (let i = 0; i < MAX_LAG - 2; i++) t.publisher.publish(b, data(b, i), FRAME_COST);
    await settle();
    // Before this change the shard's inbox got all 26: nothing stopped the edge.
    assert.equal(await t.bus.shardLag(0), MAX_LAG, "the edge stops at the bound on its own count");
    assert.equal(a.held?.length ?? 0, 26 - MAX_LAG);
    assert.equal(a.heldCostBytes, (26 - MAX_LAG) * FRAME_COST);
    assert.equal(t.publisher.heldCostBytes, (26 - MAX_LAG) * FRAME_COST);
    assert.equal(t.gate.isOpen(0), false);
    // Shard 1 is read by a live session: its connection is held back by nothing.
    t.publisher.publish(a, { k: "close", c: a.id, e: "e", d: "client" });
    await t.drain(1);
    assert.equal(t.read.length, MAX_LAG - 2);
    assert.equal(b.held?.length ?? 0, 0);

    // The sample still sees shard 0 at the bound: it stays closed, for every edge.
    assert.deepEqual(await t.sample(), []);
    assert.equal(t.gate.isOpen(0), false);
    assert.equal(
      t.gate.pick(() => 0),
      1,
      "new connections go to the shard that keeps up",
    );

    // A session reads shard 0: below half the bound it opens, and the held packets go in order
    // (at most the bound again before the next sample, counted by the edge itself).
    for (
      let round = 0;
      round < 4 && ((a.held?.length ?? 0) > 0 || (await t.bus.shardLag(0)) > 0);
      round++
    ) {
      await t.drain(0);
      await t.sample();
      await settle();
    }
    assert.equal(a.held?.length ?? 0, 0);
    assert.equal(t.publisher.held, 0);
    assert.equal(t.publisher.heldCostBytes, 0);
    const ofA = t.read.filter((e) => e.packet.c === a.id).map((e) => e.packet);
    assert.deepEqual(ofA, [
      { k: "open", c: a.id, e: "e" },
      ...Array.from({ length: 25 }, (_, i) => data(a, i)),
      { k: "close", c: a.id, e: "e", d: "client" },
    ]);
    assert.equal(t.gate.isOpen(0), true);
  });

  it("stays closed between half the bound and the bound, and opens below half", async () => {
    const t = setup([0]);
    const mark = t.gate.mark();
    assert.deepEqual(
      t.gate.sampled(new Map([[0, { lag: MAX_LAG, length: MAX_LAG, pending: 0 }]]), mark),
      [],
    );
    assert.equal(t.gate.isOpen(0), false, "a sample at the bound closes the shard");
    assert.equal(t.gate.allClosed(), true, "every shard behind: upgrades are refused");
    assert.deepEqual(
      t.gate.sampled(new Map([[0, { lag: MAX_LAG / 2, length: 50, pending: 0 }]]), t.gate.mark()),
      [],
    );
    assert.equal(t.gate.isOpen(0), false);
    assert.deepEqual(
      t.gate.sampled(
        new Map([[0, { lag: MAX_LAG / 2 - 1, length: 50, pending: 0 }]]),
        t.gate.mark(),
      ),
      [0],
    );
    assert.equal(t.gate.isOpen(0), true);
    assert.equal(t.gate.allClosed(), false);
  });

  it("counts publishes made while a sample was in flight against the next bound", () => {
    const t = setup([0]);
    const mark = t.gate.mark();
    for (let i = 0; i < 4; i++) t.gate.published(0); // after the sample was asked for
    t.gate.sampled(new Map([[0, { lag: 5, length: 5, pending: 0 }]]), mark);
    assert.equal(t.gate.published(0), true, "5 sampled + 4 in flight + this one reach 10");
    assert.equal(t.gate.isOpen(0), false);
  });

  it("gives a node's new connections its own member's open shards, and any open one when none is", () => {
    const gate = new ShardLagGate([0, 1, 2, 3], MAX_LAG);
    const picks = (preferred: number[]) =>
      [0, 1, 2, 3].map((n) => gate.pick((count) => n % count, preferred));
    assert.deepEqual(picks([2, 3]), [2, 3, 2, 3]);
    for (let i = 0; i < MAX_LAG; i++) gate.published(2); // shard 2 reaches the bound
    assert.deepEqual(picks([2, 3]), [3, 3, 3, 3], "a closed preferred shard is not picked");
    for (let i = 0; i < MAX_LAG; i++) gate.published(3);
    assert.deepEqual(picks([2, 3]), [0, 1, 0, 1], "the open ones when no preferred shard is");
    assert.deepEqual(picks([]), [0, 1, 0, 1]);
    assert.deepEqual(picks([7]), [0, 1, 0, 1], "a shard this edge does not assign is ignored");
  });

  it("closes a connection overloaded past its held bound; what it held before still goes, in order", async () => {
    const t = setup([0], { perConnection: 3 * FRAME_COST, edge: 1024 * FRAME_COST });
    const a = conn(0);
    for (let i = 0; i < MAX_LAG + 4; i++) t.publisher.publish(a, data(a, i), FRAME_COST);
    assert.deepEqual(t.overflowed, [a], "the 4th held frame passes inboundBurstBytes");
    assert.equal(a.held?.length ?? 0, 3);
    t.publisher.publish(a, { k: "close", c: a.id, e: "e", d: "overloaded" });
    await settle();
    await t.drain(0);
    await t.sample();
    await settle();
    await t.drain(0);
    assert.deepEqual(
      t.read.map((e) => e.packet),
      [
        ...Array.from({ length: MAX_LAG + 3 }, (_, i) => data(a, i)),
        { k: "close", c: a.id, e: "e", d: "overloaded" },
      ],
    );
  });

  it("bounds what every connection of a held shard holds together by edgeMaxHeldBytes", () => {
    const t = setup([0], { perConnection: 64 * FRAME_COST, edge: 5 * FRAME_COST });
    t.gate.sampled(new Map([[0, { lag: MAX_LAG, length: MAX_LAG, pending: 0 }]]), t.gate.mark());
    const conns = [conn(0), conn(0), conn(0)];
    for (const c of conns)
      for (let i = 0; i < 2; i++) t.publisher.publish(c, data(c, i), FRAME_COST);
    assert.equal(t.publisher.heldCostBytes, 5 * FRAME_COST);
    assert.deepEqual(t.overflowed, [conns[2]]);
  });

  it("publishes everything once disabled (a stopping edge reports every close)", async () => {
    const t = setup([0]);
    t.gate.sampled(new Map([[0, { lag: MAX_LAG, length: MAX_LAG, pending: 0 }]]), t.gate.mark());
    const a = conn(0);
    t.publisher.publish(a, { k: "close", c: a.id, e: "e", d: "drain" });
    assert.equal(t.publisher.held, 1);
    t.gate.disable();
    t.publisher.shardsOpened();
    await t.publisher.settled();
    assert.equal(await t.bus.shardLag(0), 1);
  });
});
