// The edge's bounds on what a client can make it hold (issue 6, item 7): message buffering,
// idle sockets, connections per address and per edge, upgrade rate, and the global bound on
// held frames. A real edge on a RedisBus; the test plays the session tier (edge-harness.ts).
import assert from "node:assert/strict";
import { startTestEdge } from "../helpers/edge-harness.js";
import { until } from "../helpers/poll.js";
import { connect, startRedis, type RedisServer } from "../helpers/redis-server.js";
import { report } from "../helpers/report.js";
import type { ClientOptions } from "../helpers/ws-client.js";

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

  describe("held frames", () => {
    it("bounds the frames held while paused over all connections by edgeMaxHeldBytes (overloaded)", async () => {
      const MIB = 1024 * 1024;
      const limits = {
        maxInflightPublishes: 16,
        maxStanzaBytes: 10000,
        // Each connection may hold 590 KB on its own: only the edge's bound can stop them.
        inboundBurstBytes: 600000,
        inboundBytesPerSecond: 10 * MIB,
        edgeMaxHeldBytes: MIB,
      };
      const edge = await startTestEdge(server.url, cleanups, limits);
      const senders = [];
      for (const n of [2, 3, 4, 5])
        senders.push(await edge.connect({ localAddress: `127.0.0.${n}` }));
      const witness = await edge.connect();
      const admin = connect(server.url);
      cleanups.push(() => admin.quit());
      await admin.call("CLIENT", "PAUSE", "1500", "WRITE");
      let maxHeld = 0;
      const sampling = setInterval(() => {
        edge
          .metric("megaphone_edge_held_bytes")
          .then((held) => (maxHeld = Math.max(maxHeld, held)))
          .catch(() => undefined);
      }, 10);
      cleanups.push(() => clearInterval(sampling));
      const framesEach = 59;
      const frame = (n: number) => `<m n="${n}">${"x".repeat(10000 - 20)}</m>`;
      // One sender after the other: the first ones' frames fit, the later ones' pass the bound.
      for (const [i, s] of senders.entries()) {
        for (let n = 0; n < framesEach; n++) s.client.send(frame(n));
        await until(
          async () =>
            !s.client.isOpen ||
            (await edge.metric("megaphone_edge_frames_in_total")) >= (i + 1) * framesEach,
          "the edge to read a sender's frames",
        );
      }
      await until(
        async () => (await edge.metric("megaphone_edge_paused")) === 0,
        "intake to resume",
        5000,
      );
      clearInterval(sampling);
      const overloaded = await edge.metric('megaphone_edge_closes_total{reason="overloaded"}');
      report(`most held: ${maxHeld} bytes (edgeMaxHeldBytes ${MIB}); ${overloaded} of 4 ended`);
      assert.ok(maxHeld > 0 && maxHeld <= MIB, `held ${maxHeld}`);
      assert.ok(overloaded >= 1 && overloaded < 4, `${overloaded} overloaded`);
      // The survivors' frames all reach the session, in order.
      for (const s of senders.filter((c) => c.client.isOpen)) {
        await until(
          () =>
            edge.session.packetsOf(s.connId).filter((p) => p.k === "data").length === framesEach,
          "every frame of a survivor",
        );
        assert.deepEqual(
          edge.session.packetsOf(s.connId).flatMap((p) => (p.k === "data" ? [p.d] : [])),
          Array.from({ length: framesEach }, (_, n) => frame(n)),
        );
      }
      await edge.roundTrip(witness);
    });
  });

  describe("per-address limits", () => {
    const refused = (reason: string) => `megaphone_edge_upgrades_refused_total{reason="${reason}"}`;

    it("caps open connections per client address (429) and frees the slot on close", async () => {
      const edge = await startTestEdge(server.url, cleanups, { maxConnectionsPerAddress: 2 });
      const from2 = { localAddress: "127.0.0.2" };
      const a = await edge.connect(from2);
      await edge.connect(from2);
      assert.equal(await edge.refusedStatus(from2), 429);
      assert.equal(await edge.metric(refused("address-connections")), 1);
      // Another address is not affected.
      await edge.roundTrip(await edge.connect({ localAddress: "127.0.0.3" }));
      a.client.close();
      await edge.session.closeOf(a.connId);
      await edge.roundTrip(await edge.connect(from2));
    });

    it("caps unauthenticated connections per address (429) and per edge (503)", async () => {
      const edge = await startTestEdge(server.url, cleanups, {
        maxUnauthenticatedConnectionsPerAddress: 2,
        maxUnauthenticatedConnections: 3,
        authTimeoutMs: 1000,
      });
      const from2 = { localAddress: "127.0.0.2" };
      const a = await edge.connect(from2);
      await edge.connect(from2);
      assert.equal(await edge.refusedStatus(from2), 429);
      assert.equal(await edge.metric(refused("address-unauthenticated")), 1);
      // The session restarts a's stream (its second stream header: SASL succeeded).
      for (const id of ["s1", "s2"])
        await edge.bus.toEdge(edge.handle.address, {
          k: "data",
          c: a.connId,
          d: `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="x" id="${id}" version="1.0"/>`,
        });
      await a.client.waitForMessages(2);
      await edge.connect(from2);
      await edge.connect({ localAddress: "127.0.0.3" });
      assert.equal(await edge.metric("megaphone_edge_unauthenticated_connections"), 3);
      assert.equal(await edge.refusedStatus({ localAddress: "127.0.0.4" }), 503);
      assert.equal(await edge.metric(refused("unauthenticated-connections")), 1);
      // Past authTimeoutMs a connection the session has not closed is past authentication.
      const first = await until503Clears(edge, { localAddress: "127.0.0.4" });
      report(`unauthenticated slots freed by age after ${first} ms (authTimeoutMs 1000)`);
      assert.ok(first >= 500, `freed after ${first} ms`);
    });

    it("limits the upgrade rate per address with a token bucket (429)", async () => {
      const edge = await startTestEdge(server.url, cleanups, {
        upgradeBurstPerAddress: 3,
        upgradesPerAddressPerSecond: 2,
      });
      const from5 = { localAddress: "127.0.0.5" };
      for (let i = 0; i < 3; i++) (await edge.connect(from5)).client.close();
      const started = Date.now();
      assert.equal(await edge.refusedStatus(from5), 429);
      assert.equal(await edge.metric(refused("upgrade-rate")), 1);
      await edge.roundTrip(await edge.connect({ localAddress: "127.0.0.6" }));
      // One token back after 500 ms.
      await new Promise((resolve) => setTimeout(resolve, 600 - (Date.now() - started)));
      await edge.roundTrip(await edge.connect(from5));
    });

    it("believes X-Forwarded-For only from trustedProxies, taking the right-most untrusted hop", async () => {
      const edge = await startTestEdge(server.url, cleanups, {
        maxConnectionsPerAddress: 1,
        trustedProxies: "127.0.0.1, 10.0.0.0/8",
      });
      const via = (xff: string, localAddress = "127.0.0.1") => ({
        localAddress,
        headers: { "X-Forwarded-For": xff },
      });
      // Through the trusted proxy 127.0.0.1 (and 10.1.2.3 before it): the client is
      // 198.51.100.7; what the client itself wrote (203.0.113.9) is not believed.
      await edge.connect(via("203.0.113.9, 198.51.100.7, 10.1.2.3"));
      assert.equal(await edge.refusedStatus(via("198.51.100.7")), 429);
      assert.equal(await edge.refusedStatus(via("1.1.1.1, 198.51.100.7")), 429);
      await edge.connect(via("203.0.113.9, 198.51.100.8"));
      // From an untrusted peer the header is ignored: both count as 127.0.0.9.
      await edge.connect(via("198.51.100.20", "127.0.0.9"));
      assert.equal(await edge.refusedStatus(via("198.51.100.21", "127.0.0.9")), 429);
    });
  });
});

/** Retries a refused upgrade until it is accepted; the ms it took. */
async function until503Clears(
  edge: Awaited<ReturnType<typeof startTestEdge>>,
  options: ClientOptions,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      await edge.connect(options);
      return Date.now() - started;
    } catch {
      if (Date.now() - started > 5000) throw new Error("still refused after 5 s");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
