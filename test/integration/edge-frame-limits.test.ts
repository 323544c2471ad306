// What one client's frames may be at the edge: text only (RFC 7395 §3.2), at most
// maxStanzaBytes, within its token bucket (inboundBytesPerSecond, inboundBurstBytes), each
// frame charged at least inboundFrameCostBytes, whitespace keepalives included. Past any of
// them the socket gets a stream error from the edge and ends; other sockets go on. A real edge
// on a RedisBus; the test plays the session tier (edge-harness.ts).
import assert from "node:assert/strict";
import type { Config } from "../../services/shared/config.js";
import type { ShardPacket } from "../../services/shared/bus/packets.js";
import { assertStreamErrorClose, edgeSuite, type TestEdge } from "../helpers/edge-harness.js";
import { until } from "../helpers/poll.js";
import type { TestClient } from "../helpers/ws-client.js";

/** A frame limit: what the client sends past it, and how the edge ends that socket. */
interface FrameLimitCase {
  title: string;
  limits: Partial<Config>;
  send(client: TestClient): void;
  condition: string;
  code: number;
  reason: string;
  /** The kinds of the packets the session got from the socket, close included. */
  published: ShardPacket["k"][];
  /** More to check on the same edge before the other socket's round trip. */
  then?(edge: TestEdge): Promise<void>;
}

const FRAME_LIMITS: FrameLimitCase[] = [
  {
    title: "ends a socket that sends a binary frame (1003, unsupported-encoding)",
    limits: {},
    send: (client) => client.sendBinary(Buffer.from("<open/>")),
    condition: "unsupported-encoding",
    code: 1003,
    reason: "binary-frame",
    published: ["open", "close"],
  },
  {
    title: "ends a socket that sends more than maxStanzaBytes (1008, policy-violation)",
    limits: { maxStanzaBytes: 10000 },
    send: (client) => client.send(`<m>${"x".repeat(10001 - 7)}</m>`),
    condition: "policy-violation",
    code: 1008,
    reason: "policy-violation",
    published: ["open", "close"],
    async then(edge) {
      // Past uWS's maxPayloadLength (maxStanzaBytes + 1 KiB) uWS drops the connection itself,
      // without a close frame (socket-behavior.ts).
      const c = await edge.connect();
      c.client.send("x".repeat(2 * 10000 + 1));
      assert.equal((await c.client.waitForClose()).code, 1006);
      assert.equal((await edge.session.closeOf(c.connId)).d, "message-too-big");
    },
  },
  {
    title: "ends a socket that outruns its token bucket (1008, policy-violation)",
    limits: { maxStanzaBytes: 10000, inboundBurstBytes: 10000, inboundBytesPerSecond: 1024 },
    send(client) {
      const frame = `<m>${"x".repeat(4000 - 7)}</m>`;
      for (let i = 0; i < 3; i++) client.send(frame);
    },
    condition: "policy-violation",
    code: 1008,
    reason: "rate-limited",
    published: ["open", "data", "data", "close"],
  },
  {
    title: "charges whitespace keepalives their frame cost (rate-limited, nothing published)",
    limits: {
      maxStanzaBytes: 10000,
      inboundBurstBytes: 10000,
      inboundBytesPerSecond: 1024,
      inboundFrameCostBytes: 2000,
    },
    send(client) {
      client.send("<open/>");
      for (let i = 0; i < 10; i++) client.send(" ");
    },
    condition: "policy-violation",
    code: 1008,
    reason: "rate-limited",
    // <open/> and 4 keepalives took the 5 frames' worth of burst; the 6th frame ran dry.
    published: ["open", "data", "close"],
  },
];

describe("edge (uWebSockets.js on a RedisBus)", () => {
  const suite = edgeSuite();
  describe("limits", () => {
    for (const limit of FRAME_LIMITS) {
      it(limit.title, async () => {
        const edge = await suite.start(limit.limits);
        const a = await edge.connect();
        const b = await edge.connect();
        limit.send(a.client);
        await assertStreamErrorClose(a.client, limit.condition, limit.code, limit.reason, "edge");
        assert.equal((await edge.session.closeOf(a.connId)).d, limit.reason);
        assert.deepEqual(
          edge.session.packetsOf(a.connId).map((p) => p.k),
          limit.published,
        );
        await limit.then?.(edge);
        await until(() => edge.handle.connections() === 1, "registry down to 1");
        await edge.roundTrip(b);
      });
    }

    it("charges every frame at least inboundFrameCostBytes: a tiny-frame flood is rate-limited", async () => {
      const limits = {
        maxStanzaBytes: 10000,
        inboundBurstBytes: 10000,
        // Refilling one frame's cost takes ~2 s, far longer than the test: only the burst counts.
        inboundBytesPerSecond: 1024,
        inboundFrameCostBytes: 2000,
      };
      const edge = await suite.start(limits);
      const a = await edge.connect();
      const b = await edge.connect();
      const frame = "<a/>";
      const floodFrames = 100;
      // 400 bytes in all, 4% of the burst: charged by bytes alone, every frame would pass.
      assert.ok(floodFrames * frame.length < limits.inboundBurstBytes / 20);
      for (let i = 0; i < floodFrames; i++) a.client.send(frame);
      await assertStreamErrorClose(a.client, "policy-violation", 1008, "rate-limited", "edge");
      assert.equal((await edge.session.closeOf(a.connId)).d, "rate-limited");
      const passed = limits.inboundBurstBytes / limits.inboundFrameCostBytes;
      assert.deepEqual(
        edge.session.packetsOf(a.connId).map((p) => (p.k === "data" ? p.d : p.k)),
        ["open", ...Array<string>(passed).fill(frame), "close"],
      );
      await edge.roundTrip(b);
    });
  });
});
