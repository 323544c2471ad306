// The real session tier, driven in-process: the backend from createBackend (Redis or memory),
// the session core from startSession, and the test in the edge's place. It writes shard packets
// itself (bus.toShard) and reads what the session sends to its edge (bus.consumeEdge), so a
// test can produce what no real edge would (duplicate opens, stale routes) and see every frame.
import type { EdgePacket } from "../../services/shared/bus/packets.js";
import { claimEdgeId, runEdgeHeartbeat } from "../../services/edge/edge-claim.js";
import { LoopHealth } from "../../services/shared/async/loop-health.js";
import { Inbox } from "./inbox.js";
import { DEFAULTS, type Config } from "../../services/shared/config.js";
import { parseConnId } from "../../services/shared/conn-id.js";
import { silentLogger, type Logger } from "../../services/shared/log.js";
import { NS_FRAMING } from "../../services/shared/ns.js";
import { createBackend, type Backend } from "../../services/shared/wiring.js";
import { createAccount } from "../../services/session/core/sasl/sasl-credentials.js";
import { startSession, type SessionHandle } from "../../services/session/session-service.js";
import { until } from "./poll.js";

/** The edge the harness plays: every connection id it makes names it. */
export const HARNESS_EDGE = "e1";
export const HARNESS_DOMAIN = "localhost";
export const OPEN_FRAME = `<open xmlns="${NS_FRAMING}" to="${HARNESS_DOMAIN}" version="1.0"/>`;

export interface HarnessOptions {
  /** Redis URL (give each test its own database index); absent means the memory backend. */
  redis?: string;
  config?: Partial<Config>;
  log?: Logger;
}

export function plainAuth(username: string, password: string): string {
  const payload = Buffer.from(`\0${username}\0${password}`).toString("base64");
  return `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${payload}</auth>`;
}

export class SessionHarness {
  /** Every packet the session wrote to the edge's inbox, in order. */
  get packets(): EdgePacket[] {
    return this.edgeInbox.items;
  }
  session: SessionHandle | undefined;
  private readonly edgeInbox = new Inbox<EdgePacket>();
  private readonly edgeAbort = new AbortController();
  private edgeReading: Promise<void> = Promise.resolve();
  private heartbeat: Promise<void> = Promise.resolve();
  private serial = 0;
  private probed = false;

  private constructor(
    readonly config: Config,
    readonly backend: Backend,
    readonly log: Logger,
  ) {}

  /** The backend and the edge's reader; the session starts with startSession(). */
  static async create(options: HarnessOptions = {}): Promise<SessionHarness> {
    const config: Config = {
      ...DEFAULTS,
      domain: HARNESS_DOMAIN,
      redis: options.redis ?? "",
      shardCount: 4,
      shards: "",
      inboxBlockMs: 50,
      trimIntervalMs: 100,
      scramIterations: 4096,
      // The harness logs in with PLAIN over what stands for a plain WebSocket.
      plainRequiresTls: false,
      logLevel: "silent",
      ...options.config,
    };
    const log = options.log ?? silentLogger;
    const harness = new SessionHarness(config, createBackend(config, log), log);
    await harness.readEdgeInbox();
    await harness.registerEdge();
    return harness;
  }

  /**
   * The edge the harness plays is alive for the sessions' edge watcher, as a real edge is:
   * its id is claimed under the address HARNESS_EDGE and its heartbeat runs until killEdge.
   */
  private async registerEdge(): Promise<void> {
    const claim = {
      edges: this.backend.edges,
      edgeId: HARNESS_EDGE,
      address: HARNESS_EDGE,
      heartbeatIntervalMs: this.config.edgeHeartbeatIntervalMs,
      heartbeatTtlMs: this.config.edgeHeartbeatTtlMs,
      log: this.log,
    };
    await claimEdgeId(claim);
    this.heartbeat = runEdgeHeartbeat(
      { ...claim, health: new LoopHealth(), onLost: () => undefined, onReset: () => undefined },
      this.edgeAbort.signal,
    );
  }

  /** The edge dies: its reader and heartbeat stop and its inbox is gone. */
  async killEdge(): Promise<void> {
    this.edgeAbort.abort();
    await Promise.all([this.edgeReading, this.heartbeat]);
    await this.backend.bus.dropEdge(HARNESS_EDGE);
  }

  private async readEdgeInbox(): Promise<void> {
    this.edgeReading = this.backend.bus.consumeEdge(
      HARNESS_EDGE,
      async (batch) => {
        for (const packet of batch) {
          if (packet.c === "probe.0.0") continue;
          this.edgeInbox.push(packet);
        }
        if (batch.some((p) => p.c === "probe.0.0")) this.probed = true;
      },
      this.edgeAbort.signal,
    );
    // The inbox exists once the reader created it (writes never create it): probe until read.
    await until(async () => {
      await this.backend.bus.toEdge(HARNESS_EDGE, { k: "data", c: "probe.0.0", d: "<probe/>" });
      return this.probed;
    }, "the edge inbox reader");
  }
  async startSession(consumer = "s1"): Promise<SessionHandle> {
    this.session = await startSession(this.config, this.backend, this.log, consumer);
    return this.session;
  }

  async stopSession(): Promise<void> {
    await this.session?.stop();
    this.session = undefined;
  }

  async stop(): Promise<void> {
    await this.stopSession();
    this.edgeAbort.abort();
    await Promise.all([this.edgeReading, this.heartbeat]);
    await this.backend.edges.unregister(HARNESS_EDGE, HARNESS_EDGE).catch(() => undefined);
    await this.backend.close();
  }

  /** A new connection id of the harness's edge on `shard`. */
  connId(shard = 0): string {
    return `${HARNESS_EDGE}.${shard}.h${(++this.serial).toString(36)}`;
  }

  async addUser(bareJid: string, password: string): Promise<void> {
    await this.backend.accounts.create(
      bareJid,
      createAccount(password, this.config.scramIterations),
    );
  }

  open(connId: string): Promise<string> {
    return this.backend.bus.toShard(parseConnId(connId).shard, {
      k: "open",
      c: connId,
      e: HARNESS_EDGE,
    });
  }

  /** One client frame, as the edge publishes it. */
  send(connId: string, frame: string): Promise<string> {
    return this.backend.bus.toShard(parseConnId(connId).shard, {
      k: "data",
      c: connId,
      e: HARNESS_EDGE,
      d: frame,
    });
  }

  /** The socket went away (as the edge reports it). */
  socketClosed(connId: string, reason = "client"): Promise<string> {
    return this.backend.bus.toShard(parseConnId(connId).shard, {
      k: "close",
      c: connId,
      e: HARNESS_EDGE,
      d: reason,
    });
  }

  /** The frames written to `connId`, in order. */
  frames(connId: string): string[] {
    return this.packets.flatMap((p) => (p.c === connId && p.k === "data" ? [p.d] : []));
  }

  /** Resolves with the first packet (already received or to come) that matches. */
  waitPacket(
    match: (p: EdgePacket) => boolean,
    what: string,
    timeoutMs = 5000,
  ): Promise<EdgePacket> {
    return this.edgeInbox.waitFor(
      match,
      () =>
        `timed out after ${timeoutMs} ms waiting for ${what}; the edge got:\n${this.packets
          .map((p) => JSON.stringify(p))
          .join("\n")}`,
      timeoutMs,
    );
  }

  /** Resolves with the first frame to `connId` that matches. */
  async waitFrame(
    connId: string,
    match: (frame: string) => boolean,
    what: string,
    timeoutMs = 5000,
  ): Promise<string> {
    const packet = await this.waitPacket(
      (p) => p.c === connId && p.k === "data" && match(p.d),
      `${what} for ${connId}`,
      timeoutMs,
    );
    return packet.k === "data" ? packet.d : "";
  }

  /** Opens the stream, authenticates with PLAIN and binds `resource`; returns the full JID. */
  async login(
    connId: string,
    username: string,
    password: string,
    resource: string,
  ): Promise<string> {
    await this.open(connId);
    await this.send(connId, OPEN_FRAME);
    await this.waitFrame(connId, (f) => f.includes("<mechanism>PLAIN<"), "SASL features");
    await this.send(connId, plainAuth(username, password));
    await this.waitFrame(connId, (f) => f.startsWith("<success"), "SASL success");
    await this.send(connId, OPEN_FRAME);
    await this.waitFrame(
      connId,
      (f) => f.includes("urn:ietf:params:xml:ns:xmpp-bind"),
      "bind feature",
    );
    const id = `bind-${connId}`;
    await this.send(
      connId,
      `<iq xmlns="jabber:client" type="set" id="${id}"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>${resource}</resource></bind></iq>`,
    );
    const bound = await this.waitFrame(connId, (f) => f.includes(`id="${id}"`), "bind result");
    const jid = /<jid>([^<]+)<\/jid>/.exec(bound)?.[1];
    if (!jid) throw new Error(`bind failed: ${bound}`);
    return jid;
  }

  /** An XEP-0199 ping to the server; resolves with its answer (a round trip through the session). */
  async ping(connId: string, id: string, timeoutMs = 5000): Promise<string> {
    await this.send(
      connId,
      `<iq xmlns="jabber:client" type="get" id="${id}"><ping xmlns="urn:xmpp:ping"/></iq>`,
    );
    return this.waitFrame(
      connId,
      (f) => f.includes(`id="${id}"`),
      `the answer to ping ${id}`,
      timeoutMs,
    );
  }
}
