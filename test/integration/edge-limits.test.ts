// The edge's bounds on what a client can make it hold (issue 6, item 7): message buffering,
// idle sockets, connections per address and per edge, upgrade rate, and the global bound on
// held frames. A real edge on a RedisBus; the test plays the session tier (edge-harness.ts).
import assert from "node:assert/strict";
import { startTestEdge } from "../helpers/edge-harness.js";
import { startRedis, type RedisServer } from "../helpers/redis-server.js";
import { report } from "../helpers/report.js";

describe("edge limits", function () {
  this.timeout(20000);
  let server: RedisServer;
  const cleanups: (() => unknown)[] = [];

  before(async () => {
    server = await startRedis();
  });
  after(async () => server?.stop());
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  describe("message size", () => {
    it("answers a message just over maxStanzaBytes with policy-violation, drops one 2 KiB over", async () => {
      const maxStanzaBytes = 10000;
      const edge = await startTestEdge(server.url, cleanups, { maxStanzaBytes });
      const a = await edge.connect();
      a.client.send("x".repeat(maxStanzaBytes + 1));
      assert.deepEqual(await a.client.waitForClose(), {
        code: 1008,
        reason: "policy-violation",
      });
      // uWS buffers at most maxStanzaBytes + 1 KiB of one message per socket; past that it
      // drops the socket without reading (or answering) more.
      const b = await edge.connect();
      b.client.send("x".repeat(maxStanzaBytes + 2048));
      assert.equal((await b.client.waitForClose()).code, 1006);
      assert.equal((await edge.session.closeOf(b.connId)).d, "message-too-big");
      await edge.roundTrip(await edge.connect());
    });
  });

  describe("idle sockets", () => {
    it("does not count WebSocket pings as activity: a socket that only pings is closed idle", async () => {
      const idleTimeoutMs = 1000;
      const edge = await startTestEdge(server.url, cleanups, { idleTimeoutMs });
      const a = await edge.connect();
      a.client.send("<open/>");
      const lastMessageAt = Date.now();
      const pinging = setInterval(() => a.client.isOpen && a.client.ping(), 100);
      cleanups.push(() => clearInterval(pinging));
      assert.deepEqual(await a.client.waitForClose(3 * idleTimeoutMs), {
        code: 1000,
        reason: "idle",
      });
      const openMs = Date.now() - lastMessageAt;
      report(`closed idle ${openMs} ms after its last message, pinging every 100 ms`);
      assert.ok(openMs >= idleTimeoutMs - 50, `closed after ${openMs} ms`);
      assert.equal((await edge.session.closeOf(a.connId)).d, "idle");
    });
  });
});
