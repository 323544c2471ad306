// A real edge (uWebSockets.js) on a RedisBus backed by a private redis-server, with the test
// playing the session tier: it consumes the shard inboxes with consumeShards and writes edge
// packets with toEdge. For the edge's integration suites (test/integration/edge-*.test.ts).
import assert from "node:assert/strict";
import http from "node:http";
import { startEdge, WEBSOCKET_PATH, type EdgeHandle } from "../../services/edge/edge-server.js";
import type { Bus } from "../../services/shared/bus/bus.js";
import type { ShardEntry, ShardPacket } from "../../services/shared/bus/packets.js";
import { RedisBus } from "../../services/shared/bus/redis-bus.js";
import { RedisEdgeRegistry } from "../../services/shared/edges/redis-edge-registry.js";
import { DEFAULTS, type Config } from "../../services/shared/config.js";
import { parseArgs } from "../../services/shared/config-parse.js";
import { silentLogger, type Logger } from "../../services/shared/log.js";
import { redisKeys, type Keys } from "../../services/shared/redis/keys.js";
import { until } from "./poll.js";
import { connect, uniquePrefix } from "./redis-server.js";
import { TestClient, type ClientOptions } from "./ws-client.js";

export const HARNESS_SHARDS = 4;
/** config.domain of every harness edge. */
export const HARNESS_DOMAIN = "edge.example";

type ClosePacket = Extract<ShardPacket, { k: "close" }>;

/** The session tier, played by the test: records every shard-inbox entry. */
export class FakeSession {
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

  packetsOf(connId: string): ShardPacket[] {
    return this.entries.filter((e) => e.packet.c === connId).map((e) => e.packet);
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

  /** The value of one sample on /metrics, e.g. `megaphone_edge_closes_total{reason="idle"}`. */
  async metric(sample: string): Promise<number> {
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get(`http://127.0.0.1:${this.handle.port}/metrics`, { agent: false }, (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (text += chunk));
          res.on("end", () => resolve(text));
        })
        .on("error", reject);
    });
    const line = body.split("\n").find((l) => l.startsWith(sample + " "));
    return line === undefined ? 0 : Number(line.slice(sample.length + 1));
  }
}

export interface EdgeHarnessOptions {
  /** Wraps the bus the edge uses (fault injection); the fake session keeps the real one. */
  edgeBus?: (bus: RedisBus) => Bus;
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
  const bus = new RedisBus({
    url: redisUrl,
    keys,
    log: silentLogger,
    readCount: 64,
    blockMs: 100,
    trimIntervalMs: 1000,
    claimIdleMs: DEFAULTS.claimIdleMs,
    edgeInboxTtlMs: DEFAULTS.edgeInboxTtlMs,
  });
  await bus.shardLag(0); // one round trip: the writer is connected when it returns
  const { config } = edgeConfig({ id: `edge-h${process.pid}x${++edgeSerial}`, ...overrides });
  const session = new FakeSession(bus, config.shardCount);
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
    ...overrides,
  });
}
