// Output and publish backpressure at the edge: a client that stops reading is closed past
// maxBackpressureBytes, intake pauses at maxInflightPublishes (upgrades refused) and resumes in
// order, and what is held while paused is bounded by its cost. A real edge on a RedisBus; the
// test plays the session tier (edge-harness.ts).
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { assertStreamErrorClose, edgeSuite } from "../helpers/edge-harness.js";
import { until } from "../helpers/poll.js";
import { connect } from "../helpers/redis-server.js";
import { TestClient } from "../helpers/ws-client.js";

describe("edge (uWebSockets.js on a RedisBus)", () => {
  const suite = edgeSuite();
  describe("limits", () => {
    it("disconnects a client that stops reading once its buffer passes maxBackpressureBytes", async () => {
      const edge = await suite.start({ maxBackpressureBytes: 64 * 1024 });
      const slow = await edge.connect();
      const good = await edge.connect();
      slow.client.pause();
      const frame = `<message>${"x".repeat(32 * 1024)}</message>`;
      const perRound = 16;
      let sent = 0;
      // Kernel buffers on both ends take a few MB before uWS starts buffering; flood in
      // rounds, each written by the edge before the next, until the edge gives up on the client.
      for (let round = 0; round < 400 && edge.handle.connections() === 2; round++) {
        await Promise.all(
          Array.from({ length: perRound }, () =>
            edge.bus.toEdge(edge.handle.address, { k: "data", c: slow.connId, d: frame }),
          ),
        );
        sent += perRound;
        await until(
          async () =>
            (await edge.metric("megaphone_edge_frames_out_total")) +
              (await edge.metric("megaphone_edge_orphan_packets_total")) >=
            sent,
          "the edge to write a round",
        );
      }
      assert.equal(edge.handle.connections(), 1, `still connected after ${sent} frames`);
      assert.equal((await edge.session.closeOf(slow.connId)).d, "slow-consumer");
      assert.equal(await edge.metric('megaphone_edge_closes_total{reason="slow-consumer"}'), 1);
      await edge.roundTrip(good);
    });

    it("pauses intake at maxInflightPublishes, refuses upgrades, and resumes in order", async () => {
      const edge = await suite.start({ maxInflightPublishes: 16 });
      const a = await edge.connect();
      const admin = connect(suite.redisUrl);
      suite.cleanups.push(() => admin.quit());
      // Redis holds every write for a while: the edge's publishes stay in flight.
      await admin.call("CLIENT", "PAUSE", "1000", "WRITE");
      const frames = Array.from({ length: 24 }, (_, i) => `<m n="${i}"/>`);
      for (const frame of frames) a.client.send(frame);
      await until(async () => (await edge.metric("megaphone_edge_held_frames")) === 8, "held");
      assert.equal(await edge.metric("megaphone_edge_paused"), 1);
      assert.equal(await edge.metric("megaphone_edge_inflight_publishes"), 16);
      const refusal = await TestClient.refused(edge.wsUrl);
      assert.equal(refusal.status, 503);
      await until(
        () => edge.session.packetsOf(a.connId).filter((p) => p.k === "data").length === 24,
        "all frames published",
      );
      assert.deepEqual(
        edge.session
          .packetsOf(a.connId)
          .filter((p) => p.k === "data")
          .map((p) => (p as { d: string }).d),
        frames,
      );
      assert.equal(await edge.metric("megaphone_edge_paused"), 0);
      await edge.roundTrip(a);
      await edge.roundTrip(await edge.connect());
    });

    it("bounds frames held while paused by their cost, so tiny frames cannot pile up (overloaded)", async () => {
      const limits = {
        maxInflightPublishes: 16,
        maxStanzaBytes: 10000,
        inboundBurstBytes: 10000,
        inboundFrameCostBytes: 1000,
        // Refills a frame's cost in 0.1 ms: with frames ~2 ms apart the bucket never runs dry,
        // so only the bound on held frames can end the socket.
        inboundBytesPerSecond: 10 * 1024 * 1024,
      };
      const edge = await suite.start(limits);
      const a = await edge.connect();
      const b = await edge.connect();
      const admin = connect(suite.redisUrl);
      suite.cleanups.push(() => admin.quit());
      await admin.call("CLIENT", "PAUSE", "1000", "WRITE");
      const maxFrames = 100;
      for (let n = 0; n < maxFrames && a.client.isOpen; n++) {
        a.client.send(`<m n="${n}"/>`);
        await delay(2);
      }
      await assertStreamErrorClose(a.client, "resource-constraint", 1013, "overloaded", "edge");
      assert.equal((await edge.session.closeOf(a.connId)).d, "overloaded");
      // 16 frames went in flight and paused intake; then inboundBurstBytes / inboundFrameCostBytes
      // = 10 were held, and the 11th held frame (charged by bytes alone: 10 bytes) overflowed.
      const published =
        limits.maxInflightPublishes + limits.inboundBurstBytes / limits.inboundFrameCostBytes;
      assert.deepEqual(
        edge.session
          .packetsOf(a.connId)
          .filter((p) => p.k === "data")
          .map((p) => (p as { d: string }).d),
        Array.from({ length: published }, (_, n) => `<m n="${n}"/>`),
      );
      await edge.roundTrip(b);
    });
  });
});
