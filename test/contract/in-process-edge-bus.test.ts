// The in-process edge bus (a Redis bus whose writes to this process's own edge go to that
// edge's in-process writer): the Bus contract, with the edge's writer taking every packet at
// once, and what the bus adds. A packet the writer takes never enters the edge's Redis inbox;
// one it refuses, and every later write once the edge stopped reading, go through that inbox
// as before. On the test's own redis-server.
import assert from "node:assert/strict";
import type { Bus, InProcessEdgeWriter } from "../../services/shared/bus/bus.js";
import { InProcessEdgeBus } from "../../services/shared/bus/in-process-edge-bus.js";
import { OwnEdgeOrder } from "../../services/shared/bus/own-edge-order.js";
import type { EdgePacket, ShardEntry, ShardPacket } from "../../services/shared/bus/packets.js";
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
function withEagerEdges(bus: Bus): Bus {
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

  busContract("redis, a node's edge written in process, every shard served", async () => {
    const fixture = await redisBusFixture(server.url);
    const inner = fixture.bus as RedisBus;
    const bus = new InProcessEdgeBus(inner, { entries: inner, order: new OwnEdgeOrder() });
    for (let shard = 0; shard < 16; shard++) await bus.serving(shard);
    return { bus: withEagerEdges(bus), cleanup: fixture.cleanup };
  });

  // The edge's side of a node's bus: what it writes to shard inboxes goes to the member's
  // read loop in process whenever a loop reads the shard (the contract's writers play the
  // edge), so the contract's reads get in-process entries, never redelivered.
  busContract("redis, a node's edge side: shard writes to the member in process", async () => {
    const fixture = await redisBusFixture(server.url);
    const inner = fixture.bus as RedisBus;
    const bus = new InProcessEdgeBus(inner, { entries: inner, order: new OwnEdgeOrder() }, {});
    for (let shard = 0; shard < 16; shard++) await bus.serving(shard);
    return { bus: withEagerEdges(bus.edgeSide()), cleanup: fixture.cleanup };
  });

  describe("a node's edge writing its sockets' packets to its own member (own-member-intake.ts)", () => {
    let keys: Keys;
    let inner: RedisBus;
    let bus: InProcessEdgeBus;
    let edge: Bus;
    const paths: string[] = [];
    beforeEach(() => {
      keys = redisKeys(uniquePrefix());
      inner = new RedisBus(testBusOptions(server.url, keys, { blockMs: 100 }));
      paths.length = 0;
      bus = new InProcessEdgeBus(
        inner,
        { entries: inner, order: new OwnEdgeOrder() },
        { counted: (path) => paths.push(path) },
      );
      edge = bus.edgeSide();
    });
    afterEach(async () => inner.close());

    const data = (c: string, n: number): ShardPacket => ({ k: "data", c, e: "n1:a", d: `${n}` });

    /**
     * The member's read loop of `shards`: what it applied, in order, and the ids it reported
     * handled; holds a packet while asked.
     */
    function member(shards: number[]) {
      const applied: ShardEntry[] = [];
      const handled: string[] = [];
      const holds = new Map<string, Promise<void>>();
      const controller = new AbortController();
      const done = bus.consumeShards(
        shards,
        "m1",
        async (batch) => {
          for (const entry of batch) {
            applied.push(entry);
            await holds.get(entry.packet.k === "data" ? entry.packet.d : "");
          }
        },
        controller.signal,
        { onHandled: (_shard, lastId) => handled.push(lastId) },
      );
      return {
        applied,
        handled,
        texts: () => applied.map((e) => (e.packet.k === "data" ? e.packet.d : e.packet.k)),
        /** The packet with payload `d` is held until the returned release is called. */
        hold(d: string): () => void {
          let release!: () => void;
          holds.set(d, new Promise((resolve) => (release = resolve)));
          return release;
        },
        stop: async () => {
          controller.abort();
          await done;
        },
      };
    }

    it("hands the packets of shards its member reads over in process, none into their inboxes", async () => {
      const m = member([2]);
      for (let n = 1; n <= 5; n++) await edge.toShard(2, data("n1.2.1", n));
      await edge.toShard(2, { k: "close", c: "n1.2.1", e: "n1:a", d: "client" });
      // A shard it does not read, and the member's own write: through the inboxes.
      await edge.toShard(3, data("n1.3.1", 9));
      await bus.toShard(2, { k: "route", c: "n1.2.1", d: "<message/>" });
      await until(() => m.texts().includes("route"), "the member's route read");
      assert.deepEqual(
        m.applied.filter((e) => e.inProcess).map((e) => e.packet.k),
        ["data", "data", "data", "data", "data", "close"],
      );
      assert.deepEqual(paths, [...Array<string>(6).fill("in-process"), "inbox"]);
      const admin = connect(server.url);
      try {
        assert.equal(await admin.xlen(keys.shardInbox(2)), 1, "the route only");
        assert.equal(await admin.xlen(keys.shardInbox(3)), 1, "a shard it does not read: inbox");
      } finally {
        admin.disconnect();
      }
      await m.stop();
    });

    it("does not overtake the edge's own packets written to the inbox before the member read the shard", async () => {
      // Written while another member served shard 4 (nothing reads it yet).
      await edge.toShard(4, data("n1.4.1", 1));
      await edge.toShard(4, data("n1.4.1", 2));
      const m = member([4]);
      const release = m.hold("1");
      await until(() => m.texts().length === 1, "the loop applies the first");
      // The member reads the shard now, but the edge's packets in its inbox are not handled.
      const third = edge.toShard(4, data("n1.4.1", 3));
      release();
      const thirdId = await third;
      await until(() => m.handled.includes(thirdId), "the three handled");
      await edge.toShard(4, data("n1.4.1", 4));
      assert.deepEqual(m.texts(), ["1", "2", "3", "4"]);
      assert.deepEqual(
        m.applied.map((e) => e.inProcess ?? false),
        [false, false, false, true],
        "the third waited behind them, through the inbox; the fourth went in process",
      );
      await m.stop();
    });

    it("ends a read loop only once the packets it took in process are applied", async () => {
      const m = member([5]);
      const release = m.hold("7");
      const applied = edge.toShard(5, data("n1.5.1", 7));
      let ended = false;
      const stopping = m.stop().then(() => (ended = true));
      // Not served while stopping: the next packet goes to the inbox, for the next reader, once
      // the first is applied.
      const next = edge.toShard(5, data("n1.5.1", 8));
      assert.equal(paths.at(-1), "inbox");
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(ended, false, "the loop waits for the packet it took");
      release();
      assert.match(await applied, /^0-\d+$/);
      await stopping;
      assert.equal(ended, true);
      assert.match(await next, /^\d+-\d+$/);
    });

    it("writes a packet the member could not apply to the inbox, with the id whose origins it keeps", async () => {
      const controller = new AbortController();
      const done = bus.consumeShards(
        [6],
        "m1",
        async (batch) => {
          if (batch.some((e) => e.inProcess)) throw new Error("lease lost");
        },
        controller.signal,
      );
      const id = await edge.toShard(6, data("n1.6.1", 1));
      assert.match(id, /^\d+-\d+$/, "stored in the inbox");
      assert.equal(paths[0], "in-process", "first handed over");
      controller.abort();
      await done;
      const admin = connect(server.url);
      try {
        const [[, fields]] = await admin.xrange(keys.shardInbox(6), "-", "+");
        const i = fields[fields.indexOf("i") + 1];
        assert.match(i, /^0-\d+$/, "with its in-process id");
      } finally {
        admin.disconnect();
      }
    });
  });

  describe("in-process edge bus of a node (other members write to its edge's inbox too)", () => {
    let keys: Keys;
    let inner: RedisBus;
    let order: OwnEdgeOrder;
    let bus: InProcessEdgeBus;
    beforeEach(() => {
      keys = redisKeys(uniquePrefix());
      inner = new RedisBus(testBusOptions(server.url, keys, { blockMs: 100 }));
      order = new OwnEdgeOrder();
      bus = new InProcessEdgeBus(inner, { entries: inner, order });
    });
    afterEach(async () => inner.close());

    /**
     * Edge `address`: what reaches its "socket" in one list, whether read from the inbox or
     * handed over in process. Its reader holds each batch until `release()` while `hold` is set.
     */
    function nodeEdge(address: string) {
      const socket: string[] = [];
      const inProcess: string[] = [];
      const controller = new AbortController();
      let gate: Promise<void> = Promise.resolve();
      let open: () => void = () => undefined;
      const edgeState = {
        socket,
        inProcess,
        /** Connections whose next packet the edge refuses in process (once each). */
        refuseOnce: new Set<string>(),
        controller,
        hold() {
          gate = new Promise((resolve) => (open = resolve));
        },
        release: () => open(),
        done: Promise.resolve(),
      };
      edgeState.done = bus.consumeEdge(
        address,
        async (batch) => {
          // Written at once, as the edge's reader does, then held (its returns, say).
          for (const packet of batch) if (packet.k === "data") socket.push(packet.d);
          await gate;
        },
        controller.signal,
        undefined,
        (packet) => {
          if (edgeState.refuseOnce.delete(packet.c)) return false;
          if (packet.k === "data") {
            socket.push(packet.d);
            inProcess.push(packet.d);
          }
          return true;
        },
      );
      return edgeState;
    }

    const frame = (c: string, n: number): EdgePacket => ({ k: "data", c, d: `<a n="${n}"/>` });

    it("writes nothing in process for a shard its member does not serve", async () => {
      const edge = nodeEdge("n1:a");
      assert.equal(await bus.toEdge("n1:a", frame("n1.3.1", 1)), true);
      await until(() => edge.socket.length === 1, "read from the inbox");
      assert.deepEqual(edge.inProcess, []);
      edge.controller.abort();
      await edge.done;
    });

    it("does not overtake what the shard's previous owner left unread in the inbox", async () => {
      const edge = nodeEdge("n1:b");
      // The edge is busy with a batch while the previous owner's frame waits behind it.
      edge.hold();
      await inner.toEdge("n1:b", frame("n1.9.1", 0));
      await until(() => edge.socket.length === 1, "the edge holds a batch");
      const admin = connect(server.url);
      try {
        await admin.xadd(keys.edgeInbox("n1:b"), "*", "k", "data", "c", "n1.2.1", "d", "<prev/>");
      } finally {
        admin.disconnect();
      }
      // Taken over now: this member's frames for the shard's connection come after <prev/>.
      await bus.serving(2);
      const writes = [1, 2].map((n) => bus.toEdge("n1:b", frame("n1.2.1", n)));
      assert.deepEqual(await Promise.all(writes), [true, true]);
      assert.deepEqual(edge.inProcess, [], "held back behind the unread frame");
      edge.release();
      // Once the edge has read past them, the in-process path again.
      await until(() => order.allows("n1.2.1"), "the edge read past the takeover's end");
      assert.equal(await bus.toEdge("n1:b", frame("n1.2.1", 3)), true);
      assert.deepEqual(edge.socket, [
        '<a n="0"/>',
        "<prev/>",
        '<a n="1"/>',
        '<a n="2"/>',
        '<a n="3"/>',
      ]);
      assert.deepEqual(edge.inProcess, ['<a n="3"/>']);
      edge.controller.abort();
      await edge.done;
    });

    it("does not overtake its own frames sent through the inbox", async () => {
      const edge = nodeEdge("n1:c");
      await bus.serving(4);
      assert.equal(await bus.toEdge("n1:c", frame("n1.4.1", 1)), true);
      assert.deepEqual(edge.inProcess, ['<a n="1"/>'], "in process while nothing waits");
      // Refused while the shard is away (given up, then taken again before its reads): through
      // the inbox, which the edge is slow to read.
      bus.released(4);
      edge.hold();
      await inner.toEdge("n1:c", frame("n1.9.9", 0));
      await until(() => edge.socket.length === 2, "the edge holds a batch");
      assert.equal(await bus.toEdge("n1:c", frame("n1.4.1", 2)), true);
      await bus.serving(4);
      assert.equal(await bus.toEdge("n1:c", frame("n1.4.1", 3)), true);
      assert.deepEqual(edge.inProcess, ['<a n="1"/>'], "behind its own unread frame");
      edge.release();
      await until(() => order.allows("n1.4.1"), "the edge read past its own frames");
      assert.equal(await bus.toEdge("n1:c", frame("n1.4.1", 4)), true);
      assert.deepEqual(edge.socket, [
        '<a n="1"/>',
        '<a n="0"/>',
        '<a n="2"/>',
        '<a n="3"/>',
        '<a n="4"/>',
      ]);
      assert.deepEqual(edge.inProcess, ['<a n="1"/>', '<a n="4"/>']);
      edge.controller.abort();
      await edge.done;
    });

    it("sends a resuming connection's frames through the inbox until another member's rename of it is read", async () => {
      const edge = nodeEdge("n1:e");
      await bus.serving(2);
      await bus.toShard(6, { k: "resume", c: "n1.2.1", e: "n1:e", d: "{}" });
      assert.equal(await bus.toEdge("n1:e", frame("n1.2.1", 1)), true);
      await until(() => edge.socket.length === 1, "read from the inbox");
      assert.deepEqual(edge.inProcess, []);
      assert.equal(order.allows("n1.2.1"), false, "the rename may still come");
      const admin = connect(server.url);
      try {
        await admin.xadd(keys.edgeInbox("n1:e"), "*", "k", "rename", "c", "n1.2.1", "d", "n1.6.7");
      } finally {
        admin.disconnect();
      }
      await until(() => order.allows("n1.2.1"), "the rename read");
      assert.equal(order.unreadConnections, 0);
      // The edge's report of a closed socket ends what the order keeps for it.
      order.resuming("n1.2.2");
      await bus.toShard(2, { k: "close", c: "n1.2.2", e: "n1:e", d: "client" });
      assert.equal(order.unreadConnections, 0);
      edge.controller.abort();
      await edge.done;
    });

    it("does not overtake a frame the edge refused in process and got through its inbox", async () => {
      const edge = nodeEdge("n1:d");
      await bus.serving(5);
      edge.hold();
      await inner.toEdge("n1:d", frame("n1.9.9", 0));
      await until(() => edge.socket.length === 1, "the edge holds a batch");
      edge.refuseOnce.add("n1.5.1");
      const writes = [1, 2].map((n) => bus.toEdge("n1:d", frame("n1.5.1", n)));
      assert.deepEqual(await Promise.all(writes), [true, true]);
      assert.deepEqual(edge.inProcess, [], "the second waits behind the refused first");
      edge.release();
      await until(() => order.allows("n1.5.1"), "the edge read past both");
      assert.equal(await bus.toEdge("n1:d", frame("n1.5.1", 3)), true);
      assert.deepEqual(edge.socket, ['<a n="0"/>', '<a n="1"/>', '<a n="2"/>', '<a n="3"/>']);
      assert.deepEqual(edge.inProcess, ['<a n="3"/>']);
      edge.controller.abort();
      await edge.done;
    });
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
