// The Bus contract: every implementation runs these same tests.
import assert from "node:assert/strict";
import type { Bus } from "../../services/shared/bus/bus.js";
import {
  compareEntryIds,
  type EdgePacket,
  type ShardEntry,
} from "../../services/shared/bus/packets.js";

export interface BusFixture {
  bus: Bus;
  cleanup(): Promise<void>;
}

/** Collects batches until `count` entries arrived, then aborts the consumer. */
function collectShards(bus: Bus, shards: number[], count: number, consumer = "c1") {
  const got: ShardEntry[] = [];
  const controller = new AbortController();
  const done = bus.consumeShards(
    shards,
    consumer,
    async (batch) => {
      got.push(...batch);
      if (got.length >= count) controller.abort();
    },
    controller.signal,
  );
  return { got, done, controller };
}

export function busContract(name: string, factory: () => Promise<BusFixture>): void {
  describe(`Bus contract: ${name}`, function () {
    let fixture: BusFixture;
    beforeEach(async () => (fixture = await factory()));
    afterEach(async () => fixture.cleanup());

    it("delivers shard packets in write order with increasing entry ids", async () => {
      const { bus } = fixture;
      const { got, done } = collectShards(bus, [3], 50);
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          bus.toShard(3, { k: "data", c: "e1.3.1", e: "e1", d: `<m n="${i}"/>` }),
        ),
      );
      await done;
      assert.deepEqual(
        got.map((e) => (e.packet.k === "data" ? e.packet.d : "")),
        Array.from({ length: 50 }, (_, i) => `<m n="${i}"/>`),
      );
      for (let i = 1; i < got.length; i++)
        assert.equal(compareEntryIds(got[i - 1].id, got[i].id), -1);
      assert.ok(got.every((e) => e.shard === 3));
    });

    it("keeps every field of every packet kind", async () => {
      const { bus } = fixture;
      const { got, done } = collectShards(bus, [0], 8);
      await bus.toShard(0, { k: "open", c: "a.0.1", e: "a" });
      // A TLS connection the edge terminated, with its channel bindings (TCP c2s).
      await bus.toShard(0, { k: "open", c: "a.0.3", e: "a", s: "1", x: "eA==", t: "dA==" });
      await bus.toShard(0, { k: "data", c: "a.0.1", e: "a", d: "<x>ü &amp;</x>" });
      await bus.toShard(0, { k: "route", c: "a.0.2", d: "<message/>" });
      await bus.toShard(0, { k: "kick", c: "a.0.2", d: "conflict" });
      await bus.toShard(0, { k: "close", c: "a.0.1", e: "a", d: "client" });
      // BOSH: a creation carries the sid's secret, a later request does not.
      await bus.toShard(0, { k: "bosh", c: "a.0.4", e: "a", d: "<body/>", s: "sEcret_-9" });
      await bus.toShard(0, { k: "bosh", c: "a.0.4", e: "a", d: "<body sid='x'/>" });
      await done;
      assert.deepEqual(
        got.map((e) => e.packet),
        [
          { k: "open", c: "a.0.1", e: "a" },
          { k: "open", c: "a.0.3", e: "a", s: "1", x: "eA==", t: "dA==" },
          { k: "data", c: "a.0.1", e: "a", d: "<x>ü &amp;</x>" },
          { k: "route", c: "a.0.2", d: "<message/>" },
          { k: "kick", c: "a.0.2", d: "conflict" },
          { k: "close", c: "a.0.1", e: "a", d: "client" },
          { k: "bosh", c: "a.0.4", e: "a", d: "<body/>", s: "sEcret_-9" },
          { k: "bosh", c: "a.0.4", e: "a", d: "<body sid='x'/>" },
        ],
      );
    });

    it("groups shards for reading so that each is read exactly once, and a group's shards are all read", async () => {
      const { bus } = fixture;
      const shards = [0, 1, 2, 5];
      const groups = bus.readingGroups(shards);
      assert.deepEqual(groups.flat().sort(), shards, "each shard in exactly one group");
      assert.deepEqual(bus.readingGroups([]), []);
      for (const shard of shards)
        await bus.toShard(shard, { k: "open", c: `a.${shard}.1`, e: "a" });
      const reading = groups.map((group) => collectShards(bus, group, group.length));
      await Promise.all(reading.map((r) => r.done));
      assert.deepEqual(reading.flatMap((r) => r.got.map((e) => e.shard)).sort(), shards);
    });

    it("reads only the shards it was given", async () => {
      const { bus } = fixture;
      await bus.toShard(1, { k: "open", c: "a.1.1", e: "a" });
      await bus.toShard(2, { k: "open", c: "a.2.1", e: "a" });
      const { got, done } = collectShards(bus, [2], 1);
      await done;
      assert.deepEqual(
        got.map((e) => e.shard),
        [2],
      );
      assert.equal(await bus.shardLag(1), 1);
    });

    it("reports a shard inbox's backlog: all of it while unread, no lag once read", async () => {
      const { bus } = fixture;
      assert.deepEqual(await bus.shardBacklog(6), { lag: 0, length: 0, pending: 0 });
      for (let i = 0; i < 3; i++) await bus.toShard(6, { k: "open", c: `a.6.${i}`, e: "a" });
      // No consumer group yet on Redis: every entry is lag.
      assert.deepEqual(await bus.shardBacklog(6), { lag: 3, length: 3, pending: 0 });
      const { done } = collectShards(bus, [6], 3);
      await done;
      const backlog = await bus.shardBacklog(6);
      assert.equal(backlog.lag, 0);
      // Read entries may stay stored until they are acknowledged and trimmed.
      assert.ok(backlog.length <= 3, `length ${backlog.length}`);
      await bus.toShard(6, { k: "open", c: "a.6.9", e: "a" });
      assert.equal((await bus.shardBacklog(6)).lag, 1);
      assert.equal(await bus.shardLag(6), 1);
    });

    it("delivers a failed batch again (at-least-once)", async () => {
      const { bus } = fixture;
      const controller = new AbortController();
      const seen: string[] = [];
      let again: { i?: string } | undefined;
      let failedOnce = false;
      const done = bus.consumeShards(
        [5],
        "c1",
        async (batch) => {
          seen.push(...batch.map((e) => e.id));
          if (failedOnce) again = batch[0].packet as { i?: string };
          if (!failedOnce) {
            failedOnce = true;
            throw new Error("handler failed");
          }
          controller.abort();
        },
        controller.signal,
      );
      await bus.toShard(5, { k: "open", c: "a.5.1", e: "a" });
      await done;
      assert.equal(seen.length, 2);
      // The same entry again; or, for a packet a node's edge handed to its member in process
      // (own-member-intake.ts), the same packet through the inbox, naming the id it had.
      assert.ok(seen[1] === seen[0] || again?.i === seen[0], `${seen[0]} again: ${seen[1]}`);
    });

    it("writes no acknowledgement for entries the handler acknowledged itself, and counts them handled", async () => {
      const { bus } = fixture;
      const controller = new AbortController();
      const ids: string[] = [];
      for (let i = 0; i < 6; i++)
        ids.push(await bus.toShard(2, { k: "data", c: `a.2.${i}`, e: "a", d: `<m/>` }));
      const own = new Set([ids[0], ids[3], ids[5]]);
      const written: string[] = [];
      const handled: string[] = [];
      let seen = 0;
      await bus.consumeShards(
        [2],
        "c1",
        async (batch, ack, acknowledged) => {
          acknowledged(batch.filter((e) => own.has(e.id)));
          ack(batch.filter((e) => e.id === ids[1]));
          seen += batch.length;
          if (seen >= ids.length) controller.abort();
        },
        controller.signal,
        {
          acknowledge: async (acks) => void written.push(...(acks.get(2) ?? [])),
          onHandled: (_shard, lastId) => handled.push(lastId),
        },
      );
      assert.deepEqual(
        written.sort(compareEntryIds),
        ids.filter((id) => !own.has(id)),
        "the others are acknowledged by the bus, once each",
      );
      assert.equal(handled.at(-1), ids[5], "handled up to the last entry all the same");
    });

    it("delivers edge packets in order to the edge's reader only", async () => {
      const { bus } = fixture;
      const controller = new AbortController();
      const got: EdgePacket[] = [];
      let resolveStarted: () => void = () => {};
      const started = new Promise<void>((r) => (resolveStarted = r));
      const done = bus.consumeEdge(
        "e9",
        async (batch) => {
          got.push(...batch);
          if (got.some((p) => p.k === "close")) controller.abort();
        },
        controller.signal,
      );
      // The reader starts from the moment of the call; give it one tick to register.
      setImmediate(resolveStarted);
      await started;
      await bus.toEdge("other", { k: "data", c: "other.0.1", d: "<nope/>" });
      for (let i = 0; i < 20; i++)
        await bus.toEdge("e9", { k: "data", c: "e9.0.1", d: `<a n="${i}"/>` });
      await bus.toEdge("e9", { k: "close", c: "e9.0.1" });
      await done;
      assert.equal(got.length, 21);
      assert.deepEqual(got[20], { k: "close", c: "e9.0.1" });
      assert.deepEqual(got[3], { k: "data", c: "e9.0.1", d: '<a n="3"/>' });
    });

    it("stores nothing for an edge that has no inbox, and says so", async () => {
      const { bus } = fixture;
      assert.equal(
        await bus.toEdge("never-started", { k: "close", c: "never-started.0.1" }),
        false,
      );
      const controller = new AbortController();
      const got: EdgePacket[] = [];
      const done = bus.consumeEdge(
        "e8",
        async (batch) => {
          got.push(...batch);
          controller.abort();
        },
        controller.signal,
      );
      // The inbox exists once the reader has started: poll the write until it is accepted.
      let stored = false;
      for (let i = 0; i < 200 && !stored; i++) {
        stored = await bus.toEdge("e8", { k: "close", c: "e8.0.1" });
        if (!stored) await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(stored, true);
      await done;
      assert.deepEqual(got, [{ k: "close", c: "e8.0.1" }]);
    });

    it("reports readiness", async () => {
      assert.equal(fixture.bus.isReady(), true);
    });
  });
}
