// The in-process edge bus (a Redis bus whose writes to this process's own edge go to that
// edge's in-process writer): the Bus contract, with the edge's writer taking every packet at
// once, and what the bus adds. A packet the writer takes never enters the edge's Redis inbox;
// one it refuses, and every later write once the edge stopped reading, go through that inbox
// as before. On the test's own redis-server.
import assert from "node:assert/strict";
import type { Bus, InProcessEdgeWriter } from "../../services/shared/bus/bus.js";
import { InProcessEdgeBus } from "../../services/shared/bus/in-process-edge-bus.js";
import type { EdgePacket } from "../../services/shared/bus/packets.js";
import { RedisBus } from "../../services/shared/bus/redis-bus.js";
import { redisKeys, type Keys } from "../../services/shared/redis/keys.js";
import { onlyImpl } from "../helpers/only-impl.js";
import { until } from "../helpers/poll.js";
import { connect, startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";
import { testBusOptions } from "../helpers/test-bus.js";
import { busContract } from "./bus.contract.js";
import { redisBusFixture } from "./redis-fixtures.js";

/**
 * The bus as an edge would use it in this process: every edge reader brings a writer that
 * hands each packet to the reader's own handler at once.
 */
function withEagerEdges(bus: InProcessEdgeBus): Bus {
  return new Proxy(bus, {
    get(target, name) {
      if (name === "consumeEdge")
        return (...[edgeId, handler, signal, health]: Parameters<Bus["consumeEdge"]>) =>
          target.consumeEdge(edgeId, handler, signal, health, (packet) => {
            void handler([packet], []);
            return true;
          });
      const value: unknown = Reflect.get(target, name);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

if (onlyImpl("redis")) {
  let server: RedisServer;
  before(async () => (server = await startRedis()));
  after(async () => server?.stop());

  busContract("redis, with this process's edge written in process", async () => {
    const fixture = await redisBusFixture(server.url);
    return { bus: withEagerEdges(new InProcessEdgeBus(fixture.bus)), cleanup: fixture.cleanup };
  });

  describe("in-process edge bus", () => {
    let keys: Keys;
    let inner: RedisBus;
    let bus: InProcessEdgeBus;
    beforeEach(() => {
      keys = redisKeys(uniquePrefix());
      inner = new RedisBus(testBusOptions(server.url, keys, { blockMs: 100 }));
      bus = new InProcessEdgeBus(inner);
    });
    afterEach(async () => inner.close());

    /** Edge `address` reading its inbox, with `write` as its in-process writer. */
    function edge(address: string, write: InProcessEdgeWriter) {
      const fromInbox: EdgePacket[] = [];
      const controller = new AbortController();
      const done = bus.consumeEdge(
        address,
        async (batch) => void fromInbox.push(...batch),
        controller.signal,
        undefined,
        write,
      );
      return { fromInbox, controller, done };
    }

    const frame = (c: string, n: number): EdgePacket => ({ k: "data", c, d: `<a n="${n}"/>` });
    const bodies = (packets: EdgePacket[]) => packets.map((p) => (p.k === "data" ? p.d : p.k));

    it("hands a turn's packets over in order, in one pass, none through the edge's Redis inbox", async () => {
      const written: EdgePacket[] = [];
      const passes: number[] = [];
      let pass = 0;
      const reader = edge("e1:a", (packet) => {
        if (passes.length === 0 || passes[passes.length - 1] !== pass) passes.push(pass);
        written.push(packet);
        return true;
      });
      const writes: Promise<boolean>[] = [];
      for (let i = 0; i < 30; i++) {
        writes.push(bus.toEdge("e1:a", frame("e1.0.1", i)));
        if (i % 10 === 9) {
          await new Promise((resolve) => setImmediate(resolve));
          pass++;
        }
      }
      assert.deepEqual(await Promise.all(writes), Array(30).fill(true));
      assert.deepEqual(
        bodies(written),
        Array.from({ length: 30 }, (_, i) => `<a n="${i}"/>`),
      );
      assert.deepEqual(passes, [0, 1, 2], "one pass per event-loop turn");
      const admin = connect(server.url);
      try {
        const entries = await admin.xrange(keys.edgeInbox("e1:a"), "-", "+");
        assert.deepEqual(
          entries.filter(([, fields]) => fields[1] !== "inbox-created"),
          [],
          "no frame in the Redis inbox",
        );
      } finally {
        admin.disconnect();
      }
      assert.deepEqual(reader.fromInbox, []);
      reader.controller.abort();
      await reader.done;
    });

    it("sends what the edge refuses through its inbox, in order, and resolves as that write", async () => {
      const written: EdgePacket[] = [];
      // The edge takes connection 1's packets and refuses connection 2's (closing, say).
      const reader = edge("e1:b", (packet) => {
        if (packet.c === "e1.0.2") return false;
        written.push(packet);
        return true;
      });
      const results = await Promise.all([
        bus.toEdge("e1:b", frame("e1.0.1", 1)),
        bus.toEdge("e1:b", frame("e1.0.2", 2)),
        bus.toEdge("e1:b", frame("e1.0.1", 3)),
        bus.toEdge("e1:b", frame("e1.0.2", 4)),
      ]);
      assert.deepEqual(results, [true, true, true, true]);
      assert.deepEqual(bodies(written), ['<a n="1"/>', '<a n="3"/>']);
      await until(() => reader.fromInbox.length === 2, "the refused packets read from the inbox");
      assert.deepEqual(bodies(reader.fromInbox), ['<a n="2"/>', '<a n="4"/>']);
      reader.controller.abort();
      await reader.done;
    });

    it("fails only the write whose hand-over throws; the rest of the turn goes on", async () => {
      const written: EdgePacket[] = [];
      const reader = edge("e1:d", (packet) => {
        if (packet.k === "data" && packet.d === '<a n="2"/>') throw new Error("writer failed");
        written.push(packet);
        return true;
      });
      const writes = [1, 2, 3].map((n) => bus.toEdge("e1:d", frame("e1.0.1", n)));
      assert.equal(await writes[0], true);
      await assert.rejects(writes[1], /writer failed/);
      assert.equal(await writes[2], true);
      assert.deepEqual(bodies(written), ['<a n="1"/>', '<a n="3"/>']);
      reader.controller.abort();
      await reader.done;
    });

    it("writes through Redis once the edge stopped reading, and to other edges always", async () => {
      let handed = 0;
      const reader = edge("e1:c", () => {
        handed++;
        return true;
      });
      reader.controller.abort();
      await reader.done;
      await inner.dropEdge("e1:c");
      // Stopped, its inbox gone: nothing is handed over, and the write says nothing was stored.
      assert.equal(await bus.toEdge("e1:c", frame("e1.0.1", 1)), false);
      assert.equal(handed, 0);
      assert.equal(await bus.toEdge("elsewhere:x", frame("elsewhere.0.1", 1)), false);
    });
  });
}
