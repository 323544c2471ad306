// WebSocket upgrades at the edge (RFC 7395 §3.1 and the edge's admission): the xmpp
// subprotocol, the Origin allow-list and maxConnections, each refused with its HTTP status and
// counted. A real edge on a RedisBus; the test plays the session tier (edge-harness.ts).
import assert from "node:assert/strict";
import { edgeSuite } from "../helpers/edge-harness.js";
import { until } from "../helpers/poll.js";
import { TestClient } from "../helpers/ws-client.js";

describe("edge (uWebSockets.js on a RedisBus)", () => {
  const suite = edgeSuite();
  describe("upgrade", () => {
    it("refuses an upgrade without the xmpp subprotocol (400)", async () => {
      const edge = await suite.start();
      const refusal = await TestClient.refused(edge.wsUrl, { protocols: [] });
      assert.equal(refusal.status, 400);
      assert.match(refusal.body, /xmpp/);
      assert.equal(
        await edge.metric('megaphone_edge_upgrades_refused_total{reason="no-xmpp-subprotocol"}'),
        1,
      );
      await edge.roundTrip(await edge.connect());
    });

    it("refuses a wrong subprotocol (400) and accepts xmpp among others", async () => {
      const edge = await suite.start();
      assert.equal((await TestClient.refused(edge.wsUrl, { protocols: ["mqtt"] })).status, 400);
      // The token is case-sensitive (RFC 7395 §3.1).
      assert.equal((await TestClient.refused(edge.wsUrl, { protocols: ["XMPP"] })).status, 400);
      const b = await edge.connect({ protocols: ["mqtt", "xmpp"] });
      assert.equal(b.client.protocol, "xmpp");
      await edge.roundTrip(b);
    });

    it("refuses an origin outside allowedOrigins (403)", async () => {
      const edge = await suite.start({
        allowedOrigins: "https://chat.example, https://m.example",
      });
      const refusal = await TestClient.refused(edge.wsUrl, { origin: "https://evil.example" });
      assert.equal(refusal.status, 403);
      await edge.roundTrip(await edge.connect({ origin: "https://m.example" }));
      // Non-browser clients send no Origin; the allow-list guards browsers (upgrade.ts).
      await edge.roundTrip(await edge.connect());
    });

    it("refuses upgrades past maxConnections (503) and counts them", async () => {
      const edge = await suite.start({ maxConnections: 1 });
      const a = await edge.connect();
      const refusal = await TestClient.refused(edge.wsUrl);
      assert.equal(refusal.status, 503);
      assert.equal(
        await edge.metric('megaphone_edge_upgrades_refused_total{reason="max-connections"}'),
        1,
      );
      await edge.roundTrip(a);
      a.client.close();
      await until(() => edge.handle.connections() === 0, "registry empty");
      await edge.roundTrip(await edge.connect());
    });
  });
});
