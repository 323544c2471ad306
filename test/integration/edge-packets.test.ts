// The edge as the session tier sees it (RFC 7395 frames in, packets out): every frame of a
// connection published in order on its shard, session data and closes written back to the
// socket, and a frame that cannot be published ending its connection. A real edge on a
// RedisBus; the test plays the session tier (edge-harness.ts).
import assert from "node:assert/strict";
import type { Bus } from "../../services/shared/bus/bus.js";
import type { RedisBus } from "../../services/shared/bus/redis-bus.js";
import { makeConnId, parseConnId } from "../../services/shared/conn-id.js";
import { assertStreamErrorClose, CLOSE_FRAME, edgeSuite } from "../helpers/edge-harness.js";
import { until } from "../helpers/poll.js";

/**
 * The RedisBus, except that a shard-inbox write of a frame containing `marker` fails. Every
 * other member is the bus's own, so the wrapper follows the Bus interface as it grows.
 */
function failingBus(bus: RedisBus, marker: string): Bus {
  const toShard: Bus["toShard"] = async (shard, packet) => {
    if (packet.k === "data" && packet.d.includes(marker))
      throw new Error("injected publish failure");
    return bus.toShard(shard, packet);
  };
  return new Proxy(bus, {
    get(target, name) {
      if (name === "toShard") return toShard;
      const value: unknown = Reflect.get(target, name);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

describe("edge (uWebSockets.js on a RedisBus)", () => {
  const suite = edgeSuite();
  describe("packets", () => {
    it("publishes open, data and close in order, on the connection id's shard", async () => {
      const edge = await suite.start();
      const a = await edge.connect();
      assert.equal(a.client.protocol, "xmpp");
      const frames = ["<open/>", "<auth/>", "<iq/>"].map((f, i) => f.replace("/>", ` n="${i}"/>`));
      for (const frame of frames) a.client.send(frame);
      a.client.close();
      assert.deepEqual(await edge.session.closeOf(a.connId), {
        k: "close",
        c: a.connId,
        e: edge.handle.address,
        d: "client-closed",
      });
      const { shard } = parseConnId(a.connId);
      const entries = edge.session.entriesOf(a.connId);
      assert.deepEqual(
        entries.map((e) => e.packet),
        [
          { k: "open", c: a.connId, e: edge.handle.address },
          ...frames.map((d) => ({ k: "data", c: a.connId, e: edge.handle.address, d })),
          { k: "close", c: a.connId, e: edge.handle.address, d: "client-closed" },
        ],
      );
      assert.ok(entries.every((e) => e.shard === shard));
      assert.ok(parseConnId(a.connId).edgeId === edge.handle.edgeId);
      await until(() => edge.handle.connections() === 0, "registry empty");
    });

    it("writes session data to the socket and ends it on a session close packet", async () => {
      const edge = await suite.start();
      const a = await edge.connect();
      const b = await edge.connect();
      const { address: edgeId } = edge.handle;
      await edge.bus.toEdge(edgeId, { k: "data", c: a.connId, d: "<features/>" });
      await edge.bus.toEdge(edgeId, { k: "data", c: a.connId, d: CLOSE_FRAME });
      await edge.bus.toEdge(edgeId, { k: "close", c: a.connId });
      // Packets for a socket that is gone are ignored.
      await edge.bus.toEdge(edgeId, { k: "data", c: a.connId, d: "<late/>" });
      assert.deepEqual(await a.client.waitForClose(), { code: 1000, reason: "session-closed" });
      assert.deepEqual(a.client.messages, ["<features/>", CLOSE_FRAME]);
      assert.equal((await edge.session.closeOf(a.connId)).d, "session-closed");
      await until(() => edge.handle.connections() === 1, "registry down to 1");
      await edge.roundTrip(b);
    });
  });

  describe("rename (XEP-0198 resumption)", () => {
    it("re-keys a socket: packets under the new id reach it, and its frames go to the new id's shard", async () => {
      const edge = await suite.start();
      const a = await edge.connect();
      const b = await edge.connect();
      const { address } = edge.handle;
      const { edgeId, shard } = parseConnId(a.connId);
      const otherShard = shard === 0 ? 1 : 0;
      const renamed = makeConnId(edgeId, otherShard, 2 ** 48 + 7);
      a.client.send("<before/>");
      await until(
        () => edge.session.packetsOf(a.connId).some((p) => p.k === "data" && p.d === "<before/>"),
        "the frame before the rename",
      );
      // A frame for the old id, the rename, a frame for the new id: in one batch or several,
      // the order holds.
      await edge.bus.toEdge(address, { k: "data", c: a.connId, d: "<first/>" });
      await edge.bus.toEdge(address, { k: "rename", c: a.connId, d: renamed });
      await edge.bus.toEdge(address, { k: "data", c: renamed, d: "<resumed/>" });
      await a.client.waitForMessages(2);
      assert.deepEqual(a.client.messages, ["<first/>", "<resumed/>"]);
      a.client.send("<after/>");
      a.client.close();
      assert.deepEqual(await edge.session.closeOf(renamed), {
        k: "close",
        c: renamed,
        e: address,
        d: "client-closed",
      });
      const after = edge.session.entriesOf(renamed);
      assert.deepEqual(
        after.map((e) => e.packet.k),
        ["data", "close"],
      );
      assert.ok(
        after.every((e) => e.shard === otherShard),
        "published to the new id's shard",
      );
      assert.deepEqual(
        edge.session.packetsOf(a.connId).map((p) => p.k),
        ["open", "data"],
        "nothing more under the old id",
      );
      await edge.roundTrip(b);
    });
  });

  describe("bus failures", () => {
    it("ends a connection whose frame could not be published (1011, internal-server-error)", async () => {
      const edge = await suite.start({}, { edgeBus: (bus) => failingBus(bus, "<fail/>") });
      const a = await edge.connect();
      const b = await edge.connect();
      a.client.send("<ok/>");
      a.client.send("<fail/>");
      await assertStreamErrorClose(
        a.client,
        "internal-server-error",
        1011,
        "internal-error",
        "edge",
      );
      assert.equal((await edge.session.closeOf(a.connId)).d, "internal-error");
      assert.deepEqual(
        edge.session.packetsOf(a.connId).map((p) => p.k),
        ["open", "data", "close"],
      );
      assert.equal(await edge.metric("megaphone_edge_publish_failures_total"), 1);
      await edge.roundTrip(b);
    });
  });
});
