// The edge against a real bus: the real edge (uWebSockets.js) on a RedisBus backed by a private
// redis-server. The test plays the session tier itself: it consumes the shard inboxes with
// consumeShards and writes edge packets with toEdge. The real session tier is exercised through
// the edge by the e2e suite (test/e2e).
import assert from "node:assert/strict";
import http from "node:http";
import { RedisBus } from "../../services/shared/bus/redis-bus.js";
import { startEdge, WEBSOCKET_PATH, type EdgeHandle } from "../../services/edge/edge-server.js";
import type { Bus } from "../../services/shared/bus/bus.js";
import type { ShardEntry, ShardPacket } from "../../services/shared/bus/packets.js";
import { DEFAULTS, type Config } from "../../services/shared/config.js";
import { parseArgs } from "../../services/shared/config-parse.js";
import { parseConnId } from "../../services/shared/conn-id.js";
import { silentLogger } from "../../services/shared/log.js";
import { redisKeys, type Keys } from "../../services/shared/redis/keys.js";
import { RedisEdgeRegistry } from "../../services/shared/edges/redis-edge-registry.js";
import { connect, startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";
import { TestClient, type ClientOptions } from "../helpers/ws-client.js";
import { until } from "../helpers/poll.js";

type ClosePacket = Extract<ShardPacket, { k: "close" }>;

const SHARDS = 4;
/** config.domain of every test edge: the `from` of the stream headers the edge writes. */
const DOMAIN = "edge.example";
/** The edge's own RFC 7395 <open/> (stream-header.ts) is these around a stream id. */
const EDGE_HEADER_BEFORE_ID = `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="${DOMAIN}" id="`;
const EDGE_HEADER_AFTER_ID = '" version="1.0" xml:lang="en"/>';
/** 128 random bits, in hex. */
const EDGE_STREAM_ID = /^[0-9a-f]{32}$/;
const STREAM_ERROR_PREFIX = '<stream:error xmlns:stream="http://etherx.jabber.org/streams">';
const CLOSE_FRAME = '<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>';

let server: RedisServer;
const cleanups: (() => unknown)[] = [];
let edgeSerial = 0;
let frameSerial = 0;

before(async () => {
  server = await startRedis();
});
after(async () => server?.stop());
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `predicate` every 10 ms until it holds, failing after `timeoutMs`. */
function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  return until(predicate, what, timeoutMs, 10);
}

/** The session tier, played by the test: records every shard-inbox entry. */
class FakeSession {
  readonly entries: ShardEntry[] = [];
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;

  constructor(bus: Bus, shardCount: number) {
    const shards = Array.from({ length: shardCount }, (_, i) => i);
    this.done = bus.consumeShards(
      shards,
      "test-session",
      async (batch) => {
        this.entries.push(...batch);
      },
      this.abort.signal,
    );
  }

  entriesOf(connId: string): ShardEntry[] {
    return this.entries.filter((e) => e.packet.c === connId);
  }

  packetsOf(connId: string): ShardPacket[] {
    return this.entriesOf(connId).map((e) => e.packet);
  }

  opens(): ShardEntry[] {
    return this.entries.filter((e) => e.packet.k === "open");
  }

  async closeOf(connId: string): Promise<ClosePacket> {
    await waitUntil(
      () => this.packetsOf(connId).some((p) => p.k === "close"),
      `close packet of ${connId}`,
    );
    return this.packetsOf(connId).find((p): p is ClosePacket => p.k === "close") as ClosePacket;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

interface Client {
  client: TestClient;
  connId: string;
}

interface HttpAnswer {
  status: number;
  body: string;
  contentType: string | undefined;
}

class TestEdge {
  constructor(
    readonly handle: EdgeHandle,
    readonly bus: RedisBus,
    readonly keys: Keys,
    readonly session: FakeSession,
  ) {}

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.handle.port}${WEBSOCKET_PATH}`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.handle.port}`;
  }

  /** Connects (one at a time) and learns the connection id from the `open` packet. */
  async connect(options?: ClientOptions): Promise<Client> {
    const opensBefore = this.session.opens().length;
    const client = await TestClient.connect(this.wsUrl, options);
    cleanups.push(() => client.terminate());
    await waitUntil(() => this.session.opens().length > opensBefore, "open packet");
    return { client, connId: this.session.opens()[opensBefore].packet.c };
  }

  /** A frame from the client reaches its shard, and a reply from the session reaches it back. */
  async roundTrip({ client, connId }: Client): Promise<void> {
    const n = ++frameSerial;
    const frame = `<iq type="get" id="q${n}"><ping xmlns="urn:xmpp:ping"/></iq>`;
    client.send(frame);
    await waitUntil(
      () => this.session.packetsOf(connId).some((p) => p.k === "data" && p.d === frame),
      "data packet",
    );
    const reply = `<iq type="result" id="q${n}"/>`;
    const before = client.messages.length;
    await this.bus.toEdge(this.handle.address, { k: "data", c: connId, d: reply });
    const messages = await client.waitForMessages(before + 1);
    assert.equal(messages[before], reply);
  }

  get(path: string, agent: http.Agent | false = false): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      http
        .get(`${this.httpUrl}${path}`, { agent }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (body += chunk));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              body,
              contentType: res.headers["content-type"],
            }),
          );
        })
        .on("error", reject);
    });
  }

  /** The value of one sample on /metrics, e.g. `megaphone_edge_closes_total{reason="idle"}`. */
  async metric(sample: string, agent: http.Agent | false = false): Promise<number> {
    const { body } = await this.get("/metrics", agent);
    const line = body.split("\n").find((l) => l.startsWith(sample + " "));
    return line === undefined ? 0 : Number(line.slice(sample.length + 1));
  }
}

/** The RedisBus, except that a shard-inbox write of a frame containing `marker` fails. */
class FailingBus implements Bus {
  constructor(
    private readonly bus: RedisBus,
    private readonly marker: string,
  ) {}
  async toShard(shard: number, packet: ShardPacket): Promise<void> {
    if (packet.k === "data" && packet.d.includes(this.marker))
      throw new Error("injected publish failure");
    return this.bus.toShard(shard, packet);
  }
  toEdge: Bus["toEdge"] = (edgeId, packet) => this.bus.toEdge(edgeId, packet);
  consumeShards: Bus["consumeShards"] = (...args) => this.bus.consumeShards(...args);
  consumeEdge: Bus["consumeEdge"] = (...args) => this.bus.consumeEdge(...args);
  recoverEdgeInbox: Bus["recoverEdgeInbox"] = (...args) => this.bus.recoverEdgeInbox(...args);
  shardLag: Bus["shardLag"] = (shard) => this.bus.shardLag(shard);
  dropEdge: Bus["dropEdge"] = (edgeId) => this.bus.dropEdge(edgeId);
  isReady: Bus["isReady"] = () => this.bus.isReady();
  close: Bus["close"] = () => this.bus.close();
}

async function startTestEdge(
  overrides: Partial<Config> = {},
  edgeBus: (bus: RedisBus) => Bus = (bus) => bus,
): Promise<TestEdge> {
  const keys = redisKeys(uniquePrefix());
  const bus = new RedisBus({
    url: server.url,
    keys,
    log: silentLogger,
    readCount: 64,
    blockMs: 100,
    trimIntervalMs: 1000,
    claimIdleMs: DEFAULTS.claimIdleMs,
    edgeInboxTtlMs: DEFAULTS.edgeInboxTtlMs,
  });
  await bus.shardLag(0); // one round trip: the writer is connected when it returns
  const { config } = parseArgs([], {}, [], {
    host: "127.0.0.1",
    port: 0,
    id: `edge-t${++edgeSerial}`,
    domain: DOMAIN,
    shardCount: SHARDS,
    ...overrides,
  });
  const session = new FakeSession(bus, config.shardCount);
  const edgesClient = connect(server.url);
  const edges = new RedisEdgeRegistry(edgesClient, keys, {
    heartbeatTtlMs: config.edgeHeartbeatTtlMs,
  });
  const handle = await startEdge(config, { bus: edgeBus(bus), edges }, silentLogger);
  cleanups.push(async () => {
    await handle.stop(1000);
    await session.stop();
    await bus.close();
    edgesClient.disconnect();
  });
  return new TestEdge(handle, bus, keys, session);
}

/**
 * Who sent the client its stream header before a canned stream error: the edge (no frame from
 * the session had reached the socket, RFC 6120 §4.9.1.1) or the session (one had).
 */
type HeaderFrom = "edge" | "session";

/** The stream id if `frame` is the edge's own stream header, else undefined. */
function edgeStreamHeaderId(frame: string): string | undefined {
  if (!frame.startsWith(EDGE_HEADER_BEFORE_ID) || !frame.endsWith(EDGE_HEADER_AFTER_ID))
    return undefined;
  const id = frame.slice(EDGE_HEADER_BEFORE_ID.length, -EDGE_HEADER_AFTER_ID.length);
  return EDGE_STREAM_ID.test(id) ? id : undefined;
}

/**
 * The client got `<stream:error><condition/>…</stream:error><close/>` and then `code`/`reason`;
 * with `header` "edge" these came right after the edge's <open/>, as the only frames, and with
 * "session" the edge wrote no <open/> of its own.
 */
async function assertStreamErrorClose(
  client: TestClient,
  condition: string,
  code: number,
  reason: string,
  header: HeaderFrom,
): Promise<void> {
  assert.deepEqual(await client.waitForClose(), { code, reason });
  if (header === "edge") {
    assert.equal(client.messages.length, 3, client.messages.join("\n"));
    assert.ok(edgeStreamHeaderId(client.messages[0]), client.messages[0]);
  } else {
    for (const frame of client.messages.slice(0, -2))
      assert.equal(edgeStreamHeaderId(frame), undefined, `edge stream header: ${frame}`);
  }
  const [error, close] = client.messages.slice(-2);
  assert.ok(
    error.startsWith(
      `${STREAM_ERROR_PREFIX}<${condition} xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>` +
        `<text xmlns="urn:ietf:params:xml:ns:xmpp-streams">`,
    ),
    error,
  );
  assert.ok(error.endsWith("</text></stream:error>"), error);
  assert.equal(close, CLOSE_FRAME);
}

describe("edge (uWebSockets.js on a RedisBus)", () => {
  describe("packets", () => {
    it("publishes open, data and close in order, on the connection id's shard", async () => {
      const edge = await startTestEdge();
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
      await waitUntil(() => edge.handle.connections() === 0, "registry empty");
    });

    it("writes session data to the socket and ends it on a session close packet", async () => {
      const edge = await startTestEdge();
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
      await waitUntil(() => edge.handle.connections() === 1, "registry down to 1");
      await edge.roundTrip(b);
    });
  });

  describe("upgrade", () => {
    it("refuses an upgrade without the xmpp subprotocol (400)", async () => {
      const edge = await startTestEdge();
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
      const edge = await startTestEdge();
      assert.equal((await TestClient.refused(edge.wsUrl, { protocols: ["mqtt"] })).status, 400);
      // The token is case-sensitive (RFC 7395 §3.1).
      assert.equal((await TestClient.refused(edge.wsUrl, { protocols: ["XMPP"] })).status, 400);
      const b = await edge.connect({ protocols: ["mqtt", "xmpp"] });
      assert.equal(b.client.protocol, "xmpp");
      await edge.roundTrip(b);
    });

    it("refuses an origin outside allowedOrigins (403)", async () => {
      const edge = await startTestEdge({
        allowedOrigins: "https://chat.example, https://m.example",
      });
      const refusal = await TestClient.refused(edge.wsUrl, { origin: "https://evil.example" });
      assert.equal(refusal.status, 403);
      await edge.roundTrip(await edge.connect({ origin: "https://m.example" }));
      // Non-browser clients send no Origin; the allow-list guards browsers (upgrade.ts).
      await edge.roundTrip(await edge.connect());
    });

    it("refuses upgrades past maxConnections (503) and counts them", async () => {
      const edge = await startTestEdge({ maxConnections: 1 });
      const a = await edge.connect();
      const refusal = await TestClient.refused(edge.wsUrl);
      assert.equal(refusal.status, 503);
      assert.equal(
        await edge.metric('megaphone_edge_upgrades_refused_total{reason="max-connections"}'),
        1,
      );
      await edge.roundTrip(a);
      a.client.close();
      await waitUntil(() => edge.handle.connections() === 0, "registry empty");
      await edge.roundTrip(await edge.connect());
    });
  });

  describe("limits", () => {
    it("ends a socket that sends a binary frame (1003, unsupported-encoding)", async () => {
      const edge = await startTestEdge();
      const a = await edge.connect();
      const b = await edge.connect();
      a.client.sendBinary(Buffer.from("<open/>"));
      await assertStreamErrorClose(a.client, "unsupported-encoding", 1003, "binary-frame", "edge");
      assert.equal((await edge.session.closeOf(a.connId)).d, "binary-frame");
      assert.deepEqual(
        edge.session.packetsOf(a.connId).map((p) => p.k),
        ["open", "close"],
      );
      await waitUntil(() => edge.handle.connections() === 1, "registry down to 1");
      await edge.roundTrip(b);
    });

    it("ends a socket that sends more than maxStanzaBytes (1008, policy-violation)", async () => {
      const edge = await startTestEdge({ maxStanzaBytes: 10000 });
      const a = await edge.connect();
      const b = await edge.connect();
      a.client.send(`<m>${"x".repeat(10001 - 7)}</m>`);
      await assertStreamErrorClose(a.client, "policy-violation", 1008, "policy-violation", "edge");
      assert.equal((await edge.session.closeOf(a.connId)).d, "policy-violation");
      assert.deepEqual(
        edge.session.packetsOf(a.connId).map((p) => p.k),
        ["open", "close"],
      );
      // Past uWS's maxPayloadLength (maxStanzaBytes + 1 KiB) uWS drops the connection itself,
      // without a close frame (socket-behavior.ts).
      const c = await edge.connect();
      c.client.send("x".repeat(2 * 10000 + 1));
      assert.equal((await c.client.waitForClose()).code, 1006);
      assert.equal((await edge.session.closeOf(c.connId)).d, "message-too-big");
      await waitUntil(() => edge.handle.connections() === 1, "registry down to 1");
      await edge.roundTrip(b);
    });

    it("ends a socket that outruns its token bucket (1008, policy-violation)", async () => {
      const edge = await startTestEdge({
        maxStanzaBytes: 10000,
        inboundBurstBytes: 10000,
        inboundBytesPerSecond: 1024,
      });
      const a = await edge.connect();
      const b = await edge.connect();
      const frame = `<m>${"x".repeat(4000 - 7)}</m>`;
      for (let i = 0; i < 3; i++) a.client.send(frame);
      await assertStreamErrorClose(a.client, "policy-violation", 1008, "rate-limited", "edge");
      assert.equal((await edge.session.closeOf(a.connId)).d, "rate-limited");
      assert.deepEqual(
        edge.session.packetsOf(a.connId).map((p) => p.k),
        ["open", "data", "data", "close"],
      );
      await edge.roundTrip(b);
    });

    it("ends a socket silent for idleTimeoutMs (1000, connection-timeout)", async () => {
      const edge = await startTestEdge({ idleTimeoutMs: 1000 });
      const a = await edge.connect();
      const started = Date.now();
      a.client.send("<open/>");
      await assertStreamErrorClose(a.client, "connection-timeout", 1000, "idle", "edge");
      assert.ok(Date.now() - started >= 1000 - 50, `closed after ${Date.now() - started} ms`);
      assert.equal((await edge.session.closeOf(a.connId)).d, "idle");
      await waitUntil(() => edge.handle.connections() === 0, "registry empty");
      await edge.roundTrip(await edge.connect());
    });

    it("ends a socket that sends nothing within handshakeTimeoutMs (1008, connection-timeout)", async () => {
      const edge = await startTestEdge({ handshakeTimeoutMs: 300 });
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
      await waitUntil(() => edge.handle.connections() === 0, "registry empty");
      await edge.roundTrip(await edge.connect());
    });

    it("sends no stream header of its own once a frame from the session reached the socket", async () => {
      const edge = await startTestEdge();
      const a = await edge.connect();
      const b = await edge.connect();
      a.client.send("<open/>");
      const sessionHeader =
        `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="${DOMAIN}" id="s1"` +
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

    it("charges every frame at least inboundFrameCostBytes: a tiny-frame flood is rate-limited", async () => {
      const limits = {
        maxStanzaBytes: 10000,
        inboundBurstBytes: 10000,
        // Refilling one frame's cost takes ~2 s, far longer than the test: only the burst counts.
        inboundBytesPerSecond: 1024,
        inboundFrameCostBytes: 2000,
      };
      const edge = await startTestEdge(limits);
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

    it("drops whitespace keepalives but counts them as activity for idleTimeoutMs", async () => {
      const edge = await startTestEdge({ idleTimeoutMs: 1000 });
      const a = await edge.connect();
      a.client.send("<open/>");
      // RFC 6120 §4.6.1 keepalives (an empty message has no element either). 4 × 400 ms keeps
      // the socket open well past idleTimeoutMs after <open/>, never silent for that long.
      for (const keepalive of [" ", "\n", "\r\n\t ", ""]) {
        await sleep(400);
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

    it("charges whitespace keepalives their frame cost (rate-limited, nothing published)", async () => {
      const edge = await startTestEdge({
        maxStanzaBytes: 10000,
        inboundBurstBytes: 10000,
        inboundBytesPerSecond: 1024,
        inboundFrameCostBytes: 2000,
      });
      const a = await edge.connect();
      const b = await edge.connect();
      a.client.send("<open/>");
      for (let i = 0; i < 10; i++) a.client.send(" ");
      await assertStreamErrorClose(a.client, "policy-violation", 1008, "rate-limited", "edge");
      assert.equal((await edge.session.closeOf(a.connId)).d, "rate-limited");
      // <open/> and 4 keepalives took the 5 frames' worth of burst; the 6th frame ran dry.
      assert.deepEqual(
        edge.session.packetsOf(a.connId).map((p) => p.k),
        ["open", "data", "close"],
      );
      await edge.roundTrip(b);
    });

    it("does not take a whitespace keepalive for the stream's <open/> (handshake-timeout)", async () => {
      const edge = await startTestEdge({ handshakeTimeoutMs: 300 });
      const a = await edge.connect();
      for (let i = 0; i < 4; i++) {
        a.client.send(" ");
        await sleep(100);
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

    it("disconnects a client that stops reading once its buffer passes maxBackpressureBytes", async () => {
      const edge = await startTestEdge({ maxBackpressureBytes: 64 * 1024 });
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
        await waitUntil(
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
      const edge = await startTestEdge({ maxInflightPublishes: 16 });
      const a = await edge.connect();
      const admin = connect(server.url);
      cleanups.push(() => admin.quit());
      // Redis holds every write for a while: the edge's publishes stay in flight.
      await admin.call("CLIENT", "PAUSE", "1000", "WRITE");
      const frames = Array.from({ length: 24 }, (_, i) => `<m n="${i}"/>`);
      for (const frame of frames) a.client.send(frame);
      await waitUntil(async () => (await edge.metric("megaphone_edge_held_frames")) === 8, "held");
      assert.equal(await edge.metric("megaphone_edge_paused"), 1);
      assert.equal(await edge.metric("megaphone_edge_inflight_publishes"), 16);
      const refusal = await TestClient.refused(edge.wsUrl);
      assert.equal(refusal.status, 503);
      await waitUntil(
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
      const edge = await startTestEdge(limits);
      const a = await edge.connect();
      const b = await edge.connect();
      const admin = connect(server.url);
      cleanups.push(() => admin.quit());
      await admin.call("CLIENT", "PAUSE", "1000", "WRITE");
      const maxFrames = 100;
      for (let n = 0; n < maxFrames && a.client.isOpen; n++) {
        a.client.send(`<m n="${n}"/>`);
        await sleep(2);
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

  describe("bus failures", () => {
    it("ends a connection whose frame could not be published (1011, internal-server-error)", async () => {
      const edge = await startTestEdge({}, (bus) => new FailingBus(bus, "<fail/>"));
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

  describe("lifecycle and HTTP", () => {
    it("stop() ends every socket with system-shutdown, publishes the closes and drops the inbox", async () => {
      const edge = await startTestEdge();
      const a = await edge.connect();
      const b = await edge.connect();
      await edge.roundTrip(a);
      const started = Date.now();
      await edge.handle.stop(2000);
      assert.ok(Date.now() - started < 2000);
      for (const { client, connId } of [a, b]) {
        // a has had a frame from the session, b not: the edge sends b a header of its own.
        const header = client === a.client ? "session" : "edge";
        await assertStreamErrorClose(client, "system-shutdown", 1001, "system-shutdown", header);
        assert.equal((await edge.session.closeOf(connId)).d, "system-shutdown");
      }
      assert.equal(edge.handle.connections(), 0);
      await assert.rejects(TestClient.connect(edge.wsUrl));
      const redis = connect(server.url);
      cleanups.push(() => redis.quit());
      assert.equal(await redis.exists(edge.keys.edgeInbox(edge.handle.address)), 0);
    });

    it("serves /healthz, /readyz (503 once stop starts), /metrics and 404", async () => {
      const edge = await startTestEdge();
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
      cleanups.push(() => agent.destroy());
      assert.equal((await edge.get("/readyz", agent)).status, 200);
      const stopping = edge.handle.stop(2000);
      assert.equal((await edge.get("/readyz", agent)).status, 503);
      assert.equal((await edge.get("/healthz", agent)).status, 200);
      await stopping;
      const shutdowns = 'megaphone_edge_closes_total{reason="system-shutdown"}';
      assert.equal(await edge.metric(shutdowns, agent), 1);
    });
  });
});
