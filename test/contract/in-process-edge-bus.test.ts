// The in-process edge bus (a Redis bus whose writes to this process's own edge are handed to
// that edge's reader in process): the Bus contract, and what it adds. Its frames never enter
// the edge's Redis inbox, stay in order across batches, and a write resolves only once its
// batch is handled; once the edge stops reading, writes go to Redis again, which finds no
// inbox. On the test's own redis-server.
import assert from "node:assert/strict";
import type { Bus } from "../../services/shared/bus/bus.js";
import { InProcessEdgeBus } from "../../services/shared/bus/in-process-edge-bus.js";
import type { EdgePacket } from "../../services/shared/bus/packets.js";
import { RedisBus } from "../../services/shared/bus/redis-bus.js";
import { redisKeys, type Keys } from "../../services/shared/redis/keys.js";
import { testBusOptions } from "../helpers/test-bus.js";
import { onlyImpl } from "../helpers/only-impl.js";
import { until } from "../helpers/poll.js";
import { connect, startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";
import { busContract } from "./bus.contract.js";
import { redisBusFixture } from "./redis-fixtures.js";

if (onlyImpl("redis")) {
  let server: RedisServer;
  before(async () => (server = await startRedis()));
  after(async () => server?.stop());

  busContract("redis, with this process's edge in process", async () => {
    const fixture = await redisBusFixture(server.url);
    return { bus: new InProcessEdgeBus(fixture.bus), cleanup: fixture.cleanup };
  });

  describe("in-process edge bus", () => {
    let keys: Keys;
    let inner: RedisBus;
    let bus: Bus;
    beforeEach(async () => {
      keys = redisKeys(uniquePrefix());
      inner = new RedisBus(testBusOptions(server.url, keys, { blockMs: 100 }));
      bus = new InProcessEdgeBus(inner);
    });
    afterEach(async () => inner.close());

    /** Reads edge `address`, keeping what it is handed, each batch's size and the ids. */
    function readEdge(address: string, handle?: (batch: EdgePacket[]) => Promise<void>) {
      const got: EdgePacket[] = [];
      const batches: number[] = [];
      const ids: string[] = [];
      const controller = new AbortController();
      const done = bus.consumeEdge(
        address,
        async (batch, entryIds) => {
          batches.push(batch.length);
          await handle?.(batch);
          got.push(...batch);
          ids.push(...entryIds);
        },
        controller.signal,
      );
      return { got, batches, ids, controller, done };
    }

    it("hands the edge its frames in order, batched per turn, none through its Redis inbox", async () => {
      const edge = readEdge("e1:a");
      const writes: Promise<boolean>[] = [];
      for (let i = 0; i < 30; i++) {
        writes.push(bus.toEdge("e1:a", { k: "data", c: "e1.0.1", d: `<a n="${i}"/>` }));
        // A new event-loop turn every ten frames: three batches.
        if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
      }
      assert.deepEqual(await Promise.all(writes), Array(30).fill(true));
      assert.deepEqual(
        edge.got.map((p) => (p.k === "data" ? p.d : p.k)),
        Array.from({ length: 30 }, (_, i) => `<a n="${i}"/>`),
      );
      assert.deepEqual(edge.batches, [10, 10, 10]);
      // Each frame's id holds the time it was written (the edge's delivery delay).
      assert.equal(edge.ids.length, 30);
      for (const id of edge.ids)
        assert.ok(Math.abs(Number(id.split("-")[0]) - Date.now()) < 5000, id);
      const admin = connect(server.url);
      try {
        // The inbox the reader made holds its creation marker at most, no frame.
        const entries = await admin.xrange(keys.edgeInbox("e1:a"), "-", "+");
        assert.deepEqual(
          entries.filter(([, fields]) => fields[1] !== "inbox-created"),
          [],
        );
      } finally {
        admin.disconnect();
      }
      edge.controller.abort();
      await edge.done;
    });

    it("resolves a write only once its batch is handled, and fails it with the batch", async () => {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let calls = 0;
      const edge = readEdge("e1:b", async () => {
        if (++calls === 1) await held;
        if (calls === 2) throw new Error("socket writes failed");
      });
      let firstDone = false;
      const first = bus.toEdge("e1:b", { k: "data", c: "e1.0.1", d: "<one/>" }).then((stored) => {
        firstDone = true;
        return stored;
      });
      await new Promise((resolve) => setImmediate(resolve));
      // The second batch waits for the first, which the handler holds.
      const second = bus.toEdge("e1:b", { k: "data", c: "e1.0.1", d: "<two/>" });
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(firstDone, false, "not resolved before its batch is handled");
      release();
      assert.equal(await first, true);
      await assert.rejects(second, /socket writes failed/);
      // A failed batch does not stop the next one.
      assert.equal(await bus.toEdge("e1:b", { k: "data", c: "e1.0.1", d: "<three/>" }), true);
      assert.deepEqual(
        edge.got.map((p) => (p.k === "data" ? p.d : p.k)),
        ["<one/>", "<three/>"],
      );
      edge.controller.abort();
      await edge.done;
    });

    it("writes to other edges through Redis, and to its own once it stopped reading", async () => {
      const other = new RedisBus(testBusOptions(server.url, keys, { blockMs: 100 }));
      try {
        // Another process's edge, read there: the frame crosses Redis to it.
        const remote: EdgePacket[] = [];
        const remoteStop = new AbortController();
        const remoteDone = other.consumeEdge(
          "e2:x",
          async (batch) => void remote.push(...batch),
          remoteStop.signal,
        );
        // Its inbox exists once its reader has started.
        await until(
          () => bus.toEdge("e2:x", { k: "close", c: "e2.0.1" }),
          "the other process's edge inbox",
        );
        const edge = readEdge("e1:c");
        edge.controller.abort();
        await edge.done;
        await inner.dropEdge("e1:c");
        // Stopped: its inbox is gone, and the write says nothing was stored.
        assert.equal(await bus.toEdge("e1:c", { k: "close", c: "e1.0.1" }), false);
        assert.deepEqual(edge.got, []);
        await until(() => remote.length > 0, "the frame read by the other process's edge");
        assert.deepEqual(remote, [{ k: "close", c: "e2.0.1" }]);
        remoteStop.abort();
        await remoteDone;
      } finally {
        await other.close();
      }
    });
  });
}
