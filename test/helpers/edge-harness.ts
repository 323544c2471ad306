// A real edge (uWebSockets.js) on a RedisBus backed by a private redis-server, with the test
// playing the session tier: it consumes the shard inboxes with consumeShards and writes edge
// packets with toEdge. For the edge's integration suites (test/integration/edge-*.test.ts):
// edgeSuite() gives a describe its redis-server and cleanups, assertStreamErrorClose checks how
// the edge ends a stream.
import assert from "node:assert/strict";
import http from "node:http";
import { startEdge, WEBSOCKET_PATH, type EdgeHandle } from "../../services/edge/edge-server.js";
import type { Bus } from "../../services/shared/bus/bus.js";
import type { ShardEntry, ShardPacket } from "../../services/shared/bus/packets.js";
import { RedisBus } from "../../services/shared/bus/redis-bus.js";
import { RedisEdgeRegistry } from "../../services/shared/edges/redis-edge-registry.js";
import type { Config } from "../../services/shared/config.js";
import { parseArgs } from "../../services/shared/config-parse.js";
import { silentLogger, type Logger } from "../../services/shared/log.js";
import { redisKeys, type Keys } from "../../services/shared/redis/keys.js";
import { until } from "./poll.js";
import { connect, startRedis, uniquePrefix, type RedisServer } from "./redis-server.js";
import { TestClient, type ClientOptions } from "./ws-client.js";
import { testBusOptions } from "./test-bus.js";

export const HARNESS_SHARDS = 4;
/** config.domain of every harness edge. */
export const HARNESS_DOMAIN = "edge.example";
/** The RFC 7395 close frame. */
export const CLOSE_FRAME = '<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>';

type ClosePacket = Extract<ShardPacket, { k: "close" }>;

/** The session tier, played by the test: records every shard-inbox entry. */
export class FakeSession {
  readonly entries: ShardEntry[] = [];
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;

  /** Reads `shards` (a shard count: all of them; none: a session tier that is down). */
  constructor(bus: Bus, shardsOrCount: number[] | number, consumer = "test-session") {
    const shards = Array.isArray(shardsOrCount)
      ? shardsOrCount
      : Array.from({ length: shardsOrCount }, (_, i) => i);
    if (shards.length === 0) {
      this.done = Promise.resolve();
      return;
    }
    this.done = bus.consumeShards(
      shards,
      consumer,
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

  async closeOf(connId: string, timeoutMs = 5000): Promise<ClosePacket> {
    await until(
      () => this.packetsOf(connId).some((p) => p.k === "close"),
      `close packet of ${connId}`,
      timeoutMs,
      10,
    );
    return this.packetsOf(connId).find((p): p is ClosePacket => p.k === "close") as ClosePacket;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

export interface HarnessClient {
  client: TestClient;
  connId: string;
}

export interface HttpAnswer {
  status: number;
  body: string;
  contentType: string | undefined;
}

export class TestEdge {
  private frameSerial = 0;

  constructor(
    readonly handle: EdgeHandle,
    readonly bus: RedisBus,
    readonly keys: Keys,
    readonly session: FakeSession,
    private readonly cleanups: (() => unknown)[],
  ) {}

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.handle.port}${WEBSOCKET_PATH}`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.handle.port}`;
  }

  /** Connects (one at a time) and learns the connection id from the `open` packet. */
  async connect(options?: ClientOptions): Promise<HarnessClient> {
    const opensBefore = this.session.opens().length;
    const client = await TestClient.connect(this.wsUrl, options);
    this.cleanups.push(() => client.terminate());
    await until(() => this.session.opens().length > opensBefore, "open packet", 5000, 10);
    return { client, connId: this.session.opens()[opensBefore].packet.c };
  }

  /** An upgrade the edge must refuse; its HTTP status. */
  async refusedStatus(options?: ClientOptions): Promise<number> {
    return (await TestClient.refused(this.wsUrl, options)).status;
  }

  /** A frame from the client reaches its shard, and a reply from the session reaches it back. */
  async roundTrip({ client, connId }: HarnessClient, timeoutMs = 5000): Promise<void> {
    const n = ++this.frameSerial;
    const frame = `<iq type="get" id="q${n}"><ping xmlns="urn:xmpp:ping"/></iq>`;
    client.send(frame);
    await until(
      () => this.session.packetsOf(connId).some((p) => p.k === "data" && p.d === frame),
      "data packet",
      timeoutMs,
      10,
    );
    const reply = `<iq type="result" id="q${n}"/>`;
    const before = client.messages.length;
    await this.bus.toEdge(this.handle.address, { k: "data", c: connId, d: reply });
    const messages = await client.waitForMessages(before + 1, timeoutMs);
    assert.equal(messages[before], reply);
  }

  /** GET `path` from the edge's HTTP side (health, metrics), on `agent` (none: a new socket). */
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

export interface EdgeHarnessOptions {
  /** Wraps the bus the edge uses (fault injection); the fake session keeps the real one. */
  edgeBus?: (bus: RedisBus) => Bus;
  /** The shards the fake session reads; default all. */
  sessionShards?: number[];
  log?: Logger;
}

let edgeSerial = 0;

/**
 * Starts a harness edge with `overrides` on the redis-server at `redisUrl`; everything it
 * starts is stopped by the functions it pushes onto `cleanups` (run them last-first).
 */
export async function startTestEdge(
  redisUrl: string,
  cleanups: (() => unknown)[],
  overrides: Partial<Config> = {},
  options: EdgeHarnessOptions = {},
): Promise<TestEdge> {
  const keys = redisKeys(uniquePrefix());
  const bus = new RedisBus(
    testBusOptions(redisUrl, keys, { readCount: 64, blockMs: 100, trimIntervalMs: 1000 }),
  );
  await bus.shardLag(0); // one round trip: the writer is connected when it returns
  const { config } = edgeConfig({ id: `edge-h${process.pid}x${++edgeSerial}`, ...overrides });
  const session = new FakeSession(bus, options.sessionShards ?? config.shardCount);
  const edgesClient = connect(redisUrl);
  const edges = new RedisEdgeRegistry(edgesClient, keys, {
    heartbeatTtlMs: config.edgeHeartbeatTtlMs,
  });
  const handle = await startEdge(
    config,
    { bus: options.edgeBus?.(bus) ?? bus, edges },
    options.log ?? silentLogger,
  );
  cleanups.push(async () => {
    await handle.stop(1000);
    await session.stop();
    await bus.close();
    edgesClient.disconnect();
  });
  return new TestEdge(handle, bus, keys, session, cleanups);
}

/** A full edge config: the harness defaults under `overrides`. */
export function edgeConfig(overrides: Partial<Config> = {}): { config: Config } {
  return parseArgs([], {}, [], {
    host: "127.0.0.1",
    port: 0,
    domain: HARNESS_DOMAIN,
    shardCount: HARNESS_SHARDS,
    // Stops close every socket at once unless a test asks for a gradual drain.
    drainDelayMs: 0,
    drainWindowMs: 0,
    ...overrides,
  });
}

export interface EdgeSuite {
  /** The suite's redis-server (set once its `before` ran). */
  readonly redisUrl: string;
  /** Run last-first after each test. */
  readonly cleanups: (() => unknown)[];
  /** startTestEdge on the suite's redis-server, stopped after the test. */
  start(overrides?: Partial<Config>, options?: EdgeHarnessOptions): Promise<TestEdge>;
}

/**
 * Registers, in the calling describe, a private redis-server for its tests and the cleanups of
 * what each test starts (edges, clients, extra connections).
 */
export function edgeSuite(): EdgeSuite {
  let server: RedisServer | undefined;
  const cleanups: (() => unknown)[] = [];
  before(async () => {
    server = await startRedis();
  });
  after(async () => server?.stop());
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const redisUrl = (): string => {
    if (!server) throw new Error("edgeSuite: the redis-server is not started yet");
    return server.url;
  };
  return {
    get redisUrl() {
      return redisUrl();
    },
    cleanups,
    start: (overrides = {}, options = {}) =>
      startTestEdge(redisUrl(), cleanups, overrides, options),
  };
}

/** The edge's own RFC 7395 <open/> (stream-header.ts) is these around a stream id. */
const EDGE_HEADER_BEFORE_ID = `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="${HARNESS_DOMAIN}" id="`;
const EDGE_HEADER_AFTER_ID = '" version="1.0" xml:lang="en"/>';
/** 128 random bits, in hex. */
const EDGE_STREAM_ID = /^[0-9a-f]{32}$/;
const STREAM_ERROR_PREFIX = '<stream:error xmlns:stream="http://etherx.jabber.org/streams">';

/**
 * Who sent the client its stream header before a canned stream error: the edge (no frame from
 * the session had reached the socket, RFC 6120 §4.9.1.1) or the session (one had).
 */
export type HeaderFrom = "edge" | "session";

/** The stream id if `frame` is a harness edge's own stream header, else undefined. */
export function edgeStreamHeaderId(frame: string): string | undefined {
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
export async function assertStreamErrorClose(
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
