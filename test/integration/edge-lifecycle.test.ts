// The edge's lifecycle and HTTP side: stop() closes every socket as drained (1001, no stream
// error: edge-drain.test.ts has the gradual drain) and drops the inbox; /healthz, /readyz (503 once stopping), /metrics and 404, on the
// client port or (metricsPort) a port of their own. A real edge on a
// RedisBus; the test plays the session tier (edge-harness.ts).
import assert from "node:assert/strict";
import http from "node:http";
import { WEBSOCKET_PATH } from "../../services/edge/edge-server.js";
import { edgeSuite } from "../helpers/edge-harness.js";
import { connect, freePort } from "../helpers/redis-server.js";
import { TestClient } from "../helpers/ws-client.js";

describe("edge (uWebSockets.js on a RedisBus)", () => {
  const suite = edgeSuite();
  describe("lifecycle and HTTP", () => {
    it("stop() closes every socket as drained (1001, no stream error), publishes the closes and drops the inbox", async () => {
      const edge = await suite.start();
      const a = await edge.connect();
      const b = await edge.connect();
      await edge.roundTrip(a);
      const started = Date.now();
      await edge.handle.stop(2000);
      assert.ok(Date.now() - started < 2000);
      for (const { client, connId } of [a, b]) {
        assert.deepEqual(await client.waitForClose(), { code: 1001, reason: "drain" });
        // Nothing but what the session wrote: no stream header, stream error or <close/>.
        assert.equal(client.messages.length, client === a.client ? 1 : 0, client.messages.join());
        assert.equal((await edge.session.closeOf(connId)).d, "drain");
      }
      assert.equal(edge.handle.connections(), 0);
      await assert.rejects(TestClient.connect(edge.wsUrl));
      const redis = connect(suite.redisUrl);
      suite.cleanups.push(() => redis.quit());
      assert.equal(await redis.exists(edge.keys.edgeInbox(edge.handle.address)), 0);
    });

    it("serves /healthz, /readyz (503 once stop starts), /metrics and 404", async () => {
      const edge = await suite.start();
      const a = await edge.connect();
      await edge.roundTrip(a);
      assert.deepEqual(await edge.get("/healthz"), {
        status: 200,
        body: "ok",
        contentType: "text/plain; charset=utf-8",
      });
      assert.equal((await edge.get("/nope")).status, 404);
      assert.equal((await edge.get(WEBSOCKET_PATH)).status, 404);

      const metrics = await edge.get("/metrics");
      assert.equal(metrics.status, 200);
      assert.equal(metrics.contentType, "text/plain; version=0.0.4; charset=utf-8");
      for (const line of [
        "# TYPE megaphone_edge_connections gauge",
        "megaphone_edge_connections 1",
        "megaphone_edge_frames_in_total 1",
        "megaphone_edge_frames_out_total 1",
        "megaphone_edge_inflight_publishes 0",
        "megaphone_edge_paused 0",
        "# TYPE megaphone_edge_closes_total counter",
      ])
        assert.ok(metrics.body.split("\n").includes(line), `${line} in\n${metrics.body}`);
      assert.ok((await edge.metric("megaphone_edge_bytes_in_total")) > 0);
      assert.ok((await edge.metric("megaphone_edge_bytes_out_total")) > 0);

      // A kept-alive connection still reaches the edge after its listen socket is closed.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      suite.cleanups.push(() => agent.destroy());
      assert.equal((await edge.get("/readyz", agent)).status, 200);
      const stopping = edge.handle.stop(2000);
      assert.equal((await edge.get("/readyz", agent)).status, 503);
      assert.equal((await edge.get("/healthz", agent)).status, 200);
      await stopping;
      const shutdowns = 'megaphone_edge_closes_total{reason="drain"}';
      assert.equal(await edge.metric(shutdowns, agent), 1);
    });

    it("with metricsPort, serves /metrics, /healthz and /readyz on that port and no /metrics on the client port", async () => {
      const metricsPort = await freePort();
      // The drain delay keeps the stop going (one socket is open) while it is scraped.
      const edge = await suite.start({ metricsPort, drainDelayMs: 500 });
      assert.equal(edge.handle.metricsPort, metricsPort);
      const a = await edge.connect();
      await edge.roundTrip(a);
      const scrape = async (path: string) => {
        const res = await fetch(`http://127.0.0.1:${metricsPort}${path}`);
        return {
          status: res.status,
          contentType: res.headers.get("content-type"),
          body: await res.text(),
        };
      };
      const metrics = await scrape("/metrics");
      assert.equal(metrics.status, 200);
      assert.equal(metrics.contentType, "text/plain; version=0.0.4; charset=utf-8");
      const lines = metrics.body.split("\n");
      for (const line of [
        "megaphone_edge_connections 1",
        "megaphone_edge_connections_opened_total 1",
        "megaphone_edge_draining 0",
      ])
        assert.ok(lines.includes(line), `${line} in\n${metrics.body}`);
      assert.equal((await scrape("/healthz")).status, 200);
      assert.equal((await scrape("/readyz")).status, 200);
      // The client port keeps its probes, not the metrics.
      assert.equal((await edge.get("/metrics")).status, 404);
      assert.equal((await edge.get("/readyz")).status, 200);

      const stopping = edge.handle.stop(2000);
      assert.equal((await scrape("/readyz")).status, 503);
      assert.match((await scrape("/metrics")).body, /^megaphone_edge_draining 1$/m);
      await stopping;
      await assert.rejects(
        fetch(`http://127.0.0.1:${metricsPort}/healthz`),
        "closed with the edge",
      );
    });
  });
});
