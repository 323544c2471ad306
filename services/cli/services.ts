// Runs the long-lived services (all-in-one, edge, session) until SIGTERM/SIGINT, then drains
// within shutdownGraceMs and exits.
import type { Config } from "../shared/config.js";
import { createLogger, type Logger } from "../shared/log.js";
import { parseJid } from "../shared/jid.js";
import { InProcessEdgeBus } from "../shared/bus/in-process-edge-bus.js";
import { OwnEdgeOrder } from "../shared/bus/own-edge-order.js";
import { RedisBus } from "../shared/bus/redis-bus.js";
import { MetricsRegistry } from "../shared/metrics.js";
import { createBackend, type Backend } from "../shared/wiring.js";
import { startEdge, type EdgeHandle } from "../edge/edge-server.js";
import { createAccount } from "../session/core/sasl/sasl-credentials.js";
import { startHealthServer } from "../shared/http/health-server.js";
import { startSession, type SessionHandle } from "../session/session-service.js";

const DEMO_USERS = ["alice:alice", "bob:bob"];

/**
 * Calls `stop` once on SIGTERM or SIGINT, then exits. A second signal calls `hurry` (an edge
 * closes its remaining sockets at once and finishes its stop) when given, else exits at once,
 * as a third does.
 */
function onShutdown(
  log: Logger,
  graceMs: number,
  stop: () => Promise<void>,
  hurry?: () => void,
): void {
  let signals = 0;
  const handler = (signal: string) => {
    signals++;
    if (signals === 2 && hurry) {
      log.warn({ signal }, "second signal: ending the drain at once");
      return hurry();
    }
    if (signals > 1) process.exit(1);
    log.info({ signal }, "shutting down");
    // Never outlive the grace period, whatever hangs.
    setTimeout(() => process.exit(1), graceMs + 2000).unref();
    stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
}

async function createUsers(config: Config, backend: Backend, specs: string[]): Promise<string[]> {
  const created: string[] = [];
  for (const spec of specs) {
    const colon = spec.lastIndexOf(":");
    if (colon <= 0) throw new Error(`--user "${spec}" is not JID:PASSWORD`);
    const name = spec.slice(0, colon);
    const jid = parseJid(name.includes("@") ? name : `${name}@${config.domain}`).bareString();
    await backend.accounts.create(
      jid,
      createAccount(spec.slice(colon + 1), config.scramIterations),
    );
    created.push(`${jid} (password ${spec.slice(colon + 1)})`);
  }
  return created;
}

/**
 * Whether this process's session member is the only one there can be: static membership of
 * this member alone. Then nothing but it writes to its edge's inbox (in-process-edge-bus.ts).
 */
export function onlyMember(config: Config): boolean {
  return config.membership === "static" && config.members.every((id) => id === config.id);
}

/**
 * Stops a process with an edge: the sockets first (drained; their clients may resume
 * elsewhere, asking this process's member meanwhile), then its member's shards if it has one
 * (handed over), then the backend.
 */
function onShutdownWithEdge(
  log: Logger,
  config: Config,
  backend: Backend,
  edge: EdgeHandle,
  session?: SessionHandle,
): void {
  onShutdown(
    log,
    config.shutdownGraceMs,
    async () => {
      await edge.stop(config.shutdownGraceMs);
      await session?.stop();
      await backend.close();
    },
    () => edge.hurry(),
  );
}

export async function runAllInOne(config: Config, log: Logger, demo: boolean): Promise<number> {
  const backend = createBackend(config, log);
  // On Redis and the only member: its replies reach its own edge in process, three stops
  // instead of five (in-process-edge-bus.ts). In memory the whole bus is in process already.
  // Its edge's socket packets reach the member in process the same way (own-member-intake.ts).
  const inProcess =
    backend.kind === "redis" && onlyMember(config)
      ? new InProcessEdgeBus(backend.bus, undefined, {})
      : undefined;
  const served: Backend = inProcess ? { ...backend, bus: inProcess } : backend;
  const edgeBackend: Backend = inProcess ? { ...backend, bus: inProcess.edgeSide() } : backend;
  // One logger per tier (a child would repeat the `tier` field in every JSON line).
  const session = await startSession(
    config,
    served,
    createLogger("session", config.logLevel),
    config.id,
    () => process.exit(1),
  );
  const edge = await startEdge(config, edgeBackend, createLogger("edge", config.logLevel), () =>
    process.exit(1),
  );
  const users = await createUsers(config, backend, [...config.user, ...(demo ? DEMO_USERS : [])]);
  const host = config.host === "0.0.0.0" ? "localhost" : config.host;
  const url = `ws://${host}:${edge.port}/xmpp-websocket`;
  const c2s = [
    edge.c2sPort === undefined
      ? ""
      : `\n  TCP c2s:       ${host}:${edge.c2sPort} (${config.c2sRequireTls ? "STARTTLS required" : "plaintext"})`,
    edge.c2sTlsPort === undefined
      ? ""
      : `\n  TCP c2s TLS:   ${host}:${edge.c2sTlsPort} (direct TLS)`,
  ].join("");
  const webClient = edge.webClient
    ? `\n  web client:    http://${host}:${edge.port}${edge.webClient.path} (converse.js ${edge.webClient.converseVersion}: open it in a browser)`
    : "";
  const bosh = config.boshEnabled
    ? `\n  BOSH URL:      http://${host}:${edge.port}/http-bind (XEP-0206)`
    : "";
  console.log(`Megaphone all-in-one is serving XMPP over WebSocket${c2s ? " and TCP" : ""}${webClient}
  WebSocket URL: ${url}${bosh}${c2s}
  domain:        ${config.domain}
  users:         ${users.length > 0 ? users.join(", ") : "(none: add --user JID:PASSWORD)"}
Log in with any XMPP client that speaks RFC 7395, e.g. service ${url}, domain ${config.domain}.`);
  if (backend.kind === "memory")
    console.log(
      "\n*** WARNING: in-memory mode. Accounts, rosters and offline messages are LOST when this process stops. Use --redis URL to keep them. ***\n",
    );
  onShutdownWithEdge(log, config, backend, edge, session);
  return -1;
}

/**
 * A node: an edge and a session member in one process, among other nodes on one Redis. Its
 * member hands the packets for its own edge's connections to that edge in process, in the
 * order the bus keeps against the other writers to its inbox (own-edge-order.ts), and the edge
 * gives new connections the member's shards, so that most replies take three stops instead
 * of five (docs/capacity.md, "Nodes"). Two-hop direct writes are off: a node's connections
 * are written to by the member serving their shard only.
 */
export async function runNode(config: Config, log: Logger): Promise<number> {
  const backend = createBackend(config, log);
  if (!(backend.bus instanceof RedisBus)) {
    await backend.close();
    throw new Error("megaphone node needs --redis");
  }
  const nodeMetrics = new MetricsRegistry();
  const frames = nodeMetrics.counter(
    "megaphone_node_own_edge_frames_total",
    "Packets this node's session member wrote for its own edge: handed over in process, or through the edge's inbox (a shard just taken over, a resume under way, a connection the edge no longer holds).",
    ["path"],
  );
  const [inProcessFrames, inboxFrames] = [frames.labels("in-process"), frames.labels("inbox")];
  const intake = nodeMetrics.counter(
    "megaphone_node_own_member_packets_total",
    "Socket packets (open, data, close) this node's edge wrote for shards: handed to its own session member in process, or through the shard's inbox (a shard another member serves, or one whose earlier inbox writes are not handled yet); fallback: handed over, not applied (the lease lost), then written to the inbox.",
    ["path"],
  );
  const packetsByPath = {
    "in-process": intake.labels("in-process"),
    inbox: intake.labels("inbox"),
    fallback: intake.labels("fallback"),
  };
  const bus = new InProcessEdgeBus(
    backend.bus,
    {
      entries: backend.bus,
      order: new OwnEdgeOrder(),
      // Bound once: no label lookup per frame.
      counted: (path) => (path === "in-process" ? inProcessFrames : inboxFrames).inc(),
    },
    { counted: (path) => packetsByPath[path].inc() },
  );
  const served: Backend = { ...backend, bus };
  // The member first: the edge serves its metrics and needs it for readiness. Shards taken
  // before the edge reads its inbox need no wait there: that inbox is made new when it starts.
  const session = await startSession(
    config,
    served,
    createLogger("session", config.logLevel),
    config.id,
    () => process.exit(1),
    bus,
  );
  const edge = await startEdge(
    config,
    // Its writes to shard inboxes go to the member in process where they may.
    { ...backend, bus: bus.edgeSide() },
    createLogger("edge", config.logLevel),
    () => process.exit(1),
    {
      soleInboxWriter: false,
      preferredShards: () => session.shards(),
      alsoReady: () => session.isServing(),
      moreMetrics: [session.metrics, nodeMetrics],
    },
  );
  log.info({ port: edge.port, shards: session.shards().length }, "node listening");
  onShutdownWithEdge(log, config, backend, edge, session);
  return -1;
}

export async function runEdge(config: Config, log: Logger): Promise<number> {
  const backend = createBackend(config, log);
  // An edge that lost its place in the mesh exits, to be restarted under a new address.
  const edge = await startEdge(config, backend, log, () => process.exit(1)).catch(
    async (err: unknown) => {
      await backend.close(); // its connections would keep a refused process alive
      throw err;
    },
  );
  onShutdownWithEdge(log, config, backend, edge);
  return -1;
}

export async function runSession(config: Config, log: Logger): Promise<number> {
  const backend = createBackend(config, log);
  // A session that cannot consume its shards is useless: exit so Kubernetes restarts it.
  const session = await startSession(config, backend, log, config.id, () => process.exit(1));
  const health = await startHealthServer(
    config.host,
    config.httpPort,
    () => backend.isReady() && session.isServing(),
    session.metrics,
  );
  log.info({ httpPort: health.port, shards: session.shards().length }, "session listening");
  onShutdown(log, config.shutdownGraceMs, async () => {
    await session.stop();
    await health.close();
    await backend.close();
  });
  return -1;
}
