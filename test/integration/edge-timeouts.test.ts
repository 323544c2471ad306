// Time limits at the edge and the stream errors it writes: idleTimeoutMs (whitespace
// keepalives, RFC 6120 §4.6.1, count as activity), handshakeTimeoutMs (a keepalive is no
// <open/>), and the edge's own stream header only while no frame from the session reached the
// socket (RFC 6120 §4.9.1.1). A real edge on a RedisBus; the test plays the session tier
// (edge-harness.ts).
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import {
  assertStreamErrorClose,
  edgeStreamHeaderId,
  edgeSuite,
  HARNESS_DOMAIN,
} from "../helpers/edge-harness.js";
import { until } from "../helpers/poll.js";

describe("edge (uWebSockets.js on a RedisBus)", () => {
  const suite = edgeSuite();
  describe("limits", () => {
    it("ends a socket silent for idleTimeoutMs (1000, connection-timeout)", async () => {
      const edge = await suite.start({ idleTimeoutMs: 1000 });
      const a = await edge.connect();
      const started = Date.now();
      a.client.send("<open/>");
      await assertStreamErrorClose(a.client, "connection-timeout", 1000, "idle", "edge");
      assert.ok(Date.now() - started >= 1000 - 50, `closed after ${Date.now() - started} ms`);
      assert.equal((await edge.session.closeOf(a.connId)).d, "idle");
      await until(() => edge.handle.connections() === 0, "registry empty");
      await edge.roundTrip(await edge.connect());
    });

    it("ends a socket that sends nothing within handshakeTimeoutMs (1008, connection-timeout)", async () => {
      const edge = await suite.start({ handshakeTimeoutMs: 300 });
      const started = Date.now();
      const a = await edge.connect();
      const a2 = await edge.connect();
      // RFC 6120 §4.9.1.1: the session never wrote its header, so the edge sends <open/>,
      // then the stream error, then <close/>, and nothing else.
      await assertStreamErrorClose(
        a.client,
        "connection-timeout",
        1008,
        "handshake-timeout",
        "edge",
      );
      assert.ok(Date.now() - started >= 300 - 50, `closed after ${Date.now() - started} ms`);
      assert.equal((await edge.session.closeOf(a.connId)).d, "handshake-timeout");
      await assertStreamErrorClose(
        a2.client,
        "connection-timeout",
        1008,
        "handshake-timeout",
        "edge",
      );
      // RFC 6120 §4.7.3: every stream gets its own unpredictable id.
      assert.notEqual(
        edgeStreamHeaderId(a.client.messages[0]),
        edgeStreamHeaderId(a2.client.messages[0]),
      );
      await until(() => edge.handle.connections() === 0, "registry empty");
      await edge.roundTrip(await edge.connect());
    });

    it("sends no stream header of its own once a frame from the session reached the socket", async () => {
      const edge = await suite.start();
      const a = await edge.connect();
      const b = await edge.connect();
      a.client.send("<open/>");
      const sessionHeader =
        `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="${HARNESS_DOMAIN}" id="s1"` +
        ` version="1.0" xml:lang="en"/>`;
      await edge.bus.toEdge(edge.handle.address, { k: "data", c: a.connId, d: sessionHeader });
      await a.client.waitForMessages(1);
      a.client.sendBinary(Buffer.from("<iq/>"));
      await assertStreamErrorClose(
        a.client,
        "unsupported-encoding",
        1003,
        "binary-frame",
        "session",
      );
      assert.equal(a.client.messages.length, 3);
      assert.equal(a.client.messages[0], sessionHeader);
      await edge.roundTrip(b);
    });

    it("drops whitespace keepalives but counts them as activity for idleTimeoutMs", async () => {
      const edge = await suite.start({ idleTimeoutMs: 1000 });
      const a = await edge.connect();
      a.client.send("<open/>");
      // RFC 6120 §4.6.1 keepalives (an empty message has no element either). 4 × 400 ms keeps
      // the socket open well past idleTimeoutMs after <open/>, never silent for that long.
      for (const keepalive of [" ", "\n", "\r\n\t ", ""]) {
        await delay(400);
        a.client.send(keepalive);
      }
      const lastKeepaliveAt = Date.now();
      assert.ok(a.client.isOpen, "closed although keepalives kept coming");
      await assertStreamErrorClose(a.client, "connection-timeout", 1000, "idle", "edge");
      const silentMs = Date.now() - lastKeepaliveAt;
      assert.ok(silentMs >= 1000 - 50, `closed after ${silentMs} ms of silence`);
      assert.equal((await edge.session.closeOf(a.connId)).d, "idle");
      // The session saw nothing of the keepalives.
      assert.deepEqual(edge.session.packetsOf(a.connId), [
        { k: "open", c: a.connId, e: edge.handle.address },
        { k: "data", c: a.connId, e: edge.handle.address, d: "<open/>" },
        { k: "close", c: a.connId, e: edge.handle.address, d: "idle" },
      ]);
      await edge.roundTrip(await edge.connect());
    });

    it("does not take a whitespace keepalive for the stream's <open/> (handshake-timeout)", async () => {
      const edge = await suite.start({ handshakeTimeoutMs: 300 });
      const a = await edge.connect();
      for (let i = 0; i < 4; i++) {
        a.client.send(" ");
        await delay(100);
      }
      await assertStreamErrorClose(
        a.client,
        "connection-timeout",
        1008,
        "handshake-timeout",
        "edge",
      );
      assert.equal((await edge.session.closeOf(a.connId)).d, "handshake-timeout");
      assert.deepEqual(
        edge.session.packetsOf(a.connId).map((p) => p.k),
        ["open", "close"],
      );
      await edge.roundTrip(await edge.connect());
    });
  });
});
