// The edge (DESIGN.md): accepts XMPP-over-WebSocket sockets (RFC 7395), gives each a connection
// id and a shard, moves opaque frames between sockets and streams, enforces the transport limits
// and drains on stop. This file only wires the parts together.
import { randomInt } from "node:crypto";
import { performance } from "node:perf_hooks";
import uWS, { type us_listen_socket, type us_socket } from "uWebSockets.js";
import { settlesWithin } from "../shared/async/delay.js";
import { LoopHealth } from "../shared/async/loop-health.js";
import type { Bus, InProcessEdgeWriter } from "../shared/bus/bus.js";
import { type Config } from "../shared/config.js";
import { parseShardRanges } from "../shared/config-parse.js";
import { IpList } from "../shared/ip-list.js";
import type { Logger } from "../shared/log.js";
import type { RedisCommandTimer } from "../shared/redis/command-timer.js";
import type { CannedCloseName } from "./close-reasons.js";
import type { EdgeRegistry } from "../shared/edges/edge-registry.js";
import { defaultProcessId } from "../shared/process-id.js";
import {
  returnInboxPackets,
  returnUndeliveredUntilStored,
  undeliveredPacket,
} from "../shared/bus/undelivered.js";
import { claimEdgeId, newEdgeAddress, runEdgeHeartbeat } from "./edge-claim.js";
import { drainSockets } from "./drain.js";
import { createEdgeMetrics } from "./edge-metrics.js";
import type { MetricsRegistry } from "../shared/metrics.js";
import { registerHealthRoutes } from "./http/health.js";
import {
  loadWebClient,
  registerWebClientRoutes,
  type WebClient,
} from "./http/web-client/web-client-routes.js";
import { startHealthServer, type HealthServer } from "../shared/http/health-server.js";
import { runInboxReader } from "./inbox-reader.js";
import { runShardLagSampler, ShardLagGate } from "./shard-lag.js";
import { Admission } from "./ws/admission.js";
import type { Connection, SocketData } from "./ws/connection.js";
import { ConnectionRegistry } from "./ws/connection-registry.js";
import { endConnection } from "./ws/end-connection.js";
import { deliverEdgeBatch, writeInProcess, type OutboundDeps } from "./ws/outbound.js";
import { ShardPublisher } from "./ws/publisher.js";
import { socketBehavior } from "./ws/socket-behavior.js";
import { startSweeper } from "./ws/sweeper.js";
import { startC2s, type C2sListeners } from "./tcp/c2s-server.js";
import { BOSH_PATH, registerBoshRoute, type BoshRoute } from "./bosh/bosh-route.js";
import { maxPayloadLengthBytes } from "./ws/socket-behavior.js";
import { parseAllowedOrigins, type UpgradeRefusal } from "./ws/upgrade.js";

/** RFC 7395 does not fix a path; this is the conventional one (XEP-0156 discovery points here). */
export const WEBSOCKET_PATH = "/xmpp-websocket";

export interface EdgeHandle {
  /** The port actually listened on (config.port, or the one the OS chose for 0). */
  port: number;
  /** The port of /metrics when config.metricsPort is set (undefined: on `port`). */
  metricsPort: number | undefined;
  /** The web client served at `/` (config.webClient), with converse.js's version. */
  webClient: { path: string; converseVersion: string } | undefined;
  /** The TCP c2s ports actually listened on (undefined: off; tcp/c2s-server.ts). */
  c2sPort: number | undefined;
  c2sTlsPort: number | undefined;
  edgeId: string;
  /** This incarnation's address (edge-registry.ts). */
  address: string;
  /** Open client sockets. */
  connections(): number;
  /**
   * Drains within `graceMs` (default config.shutdownGraceMs): fails /readyz and refuses
   * upgrades, waits drainDelayMs, closes the sockets (`drain`) spread over drainWindowMs
   * (drain.ts), closes the listen socket, waits for in-flight publishes, stops the inbox reader
   * and drops the inbox. Calling it again returns the same promise.
   */
  stop(graceMs?: number): Promise<void>;
  /** Closes the sockets a running stop has not closed yet at once (a second SIGTERM). */
  hurry(): void;
}

export interface EdgeBackend {
  bus: Bus;
  edges: EdgeRegistry;
  /** Times the backend's Redis calls; its histogram is served on the edge's /metrics. */
  redisCommands?: RedisCommandTimer;
}

/** What an edge sharing its process with a session member needs (services.ts). */
export interface EdgeOptions {
  /**
   * Whether its session member is the only writer to its inbox, which the reader then checks
   * (the one-member all-in-one: in-process-edge-bus.ts); false for a node, whose bus orders
   * its in-process writes against the other writers. Default true.
   */
  soleInboxWriter?: boolean;
  /** Shards new connections get when one of them is open (a node: its member's). */
  preferredShards?: () => readonly number[];
  /** Also required for /readyz (a node: its session member serves). */
  alsoReady?: () => boolean;
  /** Served on /metrics with the edge's own (a node: its session member's and its own). */
  moreMetrics?: readonly MetricsRegistry[];
}

export async function startEdge(
  config: Config,
  { bus, edges, redisCommands }: EdgeBackend,
  log: Logger,
  /** Called when the edge lost its place in the mesh and stopped; the process should exit. */
  onFatal: () => void = () => undefined,
  options: EdgeOptions = {},
): Promise<EdgeHandle> {
  const edgeId = config.id || defaultProcessId("e-");
  const address = newEdgeAddress(edgeId);
  const elog = log.child({ edgeId, address });
  const claim = {
    edges,
    edgeId,
    address,
    heartbeatIntervalMs: config.edgeHeartbeatIntervalMs,
    heartbeatTtlMs: config.edgeHeartbeatTtlMs,
    log: elog,
  };
  // Its files are listed before the edge claims anything: a missing package fails the start.
  const webClient: WebClient | undefined = config.webClient
    ? await loadWebClient({
        domain: config.domain,
        websocketPath: WEBSOCKET_PATH,
        boshPath: config.boshEnabled ? BOSH_PATH : undefined,
        maxCachedBytes: config.webClientCacheBytes,
      })
    : undefined;
  // Before anything else: an edge that cannot have its id must not touch that id's streams.
  await claimEdgeId(claim);
  const now = () => performance.now();
  const registry = new ConnectionRegistry();
  const admission = new Admission(config);
  const assignableShards = parseShardRanges(config.shards, config.shardCount);
  const gate = new ShardLagGate(assignableShards, config.maxInboxLagEntries);
  let listenSocket: us_listen_socket | undefined;
  let stopping = false;

  const metrics = createEdgeMetrics(
    {
      connections: () => registry.size,
      inflightPublishes: () => publisher.inflight,
      heldFrames: () => publisher.held,
      heldBytes: () => publisher.heldCostBytes,
      boshHeldRequests: () => bosh?.held.size ?? 0,
      unauthenticatedConnections: () => admission.unauthenticatedCount(now()),
      paused: () => publisher.paused,
      draining: () => stopping,
      shardInboxes: () =>
        gate.shards.map((shard) => ({
          shard,
          backlog: gate.backlog(shard),
          holding: !gate.isOpen(shard),
        })),
    },
    redisCommands,
  );
  const end = (conn: Connection, reason: CannedCloseName): void => {
    try {
      endConnection(conn, reason, config.domain);
    } catch (err) {
      elog.error({ err, connId: conn.id, shard: conn.shard, reason }, "ending a socket failed");
    }
  };
  const publisher = new ShardPublisher({
    bus,
    maxInflight: config.maxInflightPublishes,
    maxHeldCostBytesPerConnection: config.inboundBurstBytes,
    maxHeldCostBytes: config.edgeMaxHeldBytes,
    gate,
    log: elog,
    metrics,
    onFailure: (conn) => end(conn, "internal-error"),
    onOverflow: (conn) => end(conn, "overloaded"),
  });
  const capacityRefusal = (address: string): UpgradeRefusal | undefined => {
    if (stopping) return "stopping";
    const limited = admission.refusal(address, now());
    if (limited) return limited;
    if (publisher.paused) return "overloaded";
    if (gate.allClosed()) return "shards-behind";
    if (registry.size >= config.maxConnections) return "max-connections";
    return undefined;
  };

  // The inbox reader starts before the edge listens, so that (on Redis) its clearing of a
  // previous incarnation's inbox is ordered before any packet for this one's sockets.
  const outbound: OutboundDeps = {
    registry,
    maxBackpressureBytes: config.maxBackpressureBytes,
    metrics,
    log: elog,
    end,
    returnUndelivered: async (connId, stanza) => {
      // Behind what the connection still holds (its frames and its close, while its shard is
      // far behind or the edge paused), so the session sees them first; straight away if none.
      const holder = publisher.holding(connId);
      if (holder) {
        const stored = await publisher
          .publishBehind(holder, undeliveredPacket(connId, address, stanza))
          .then(() => true)
          .catch(() => false);
        if (stored) return;
      }
      await returnUndeliveredUntilStored(bus, connId, address, stanza, inboxAbort.signal, elog);
    },
  };
  // Writes of this process's own session, when its bus hands them over without the inbox
  // (in-process-edge-bus.ts). They are safe only while nothing else writes to this inbox: a
  // frame the reader finds for a connection written to here, still open, means another writer
  // could be overtaken, so in-process writes stop for good and the error says why.
  const inProcess = { used: false, refused: false };
  const lookup = (connId: string) => registry.get(connId);
  const writeOwnSession: InProcessEdgeWriter = (packet) => {
    if (inProcess.refused || packet.k === "bosh") return false;
    admission.sawSessionPacket(packet, lookup);
    if (!writeInProcess(packet, outbound)) return false;
    inProcess.used = true;
    return true;
  };
  const inboxAbort = new AbortController();
  const inboxHealth = new LoopHealth();
  const inboxReader = runInboxReader(
    bus,
    address,
    async (batch, entryIds) => {
      metrics.inboxBatchEntries.observe(batch.length);
      // BOSH answers go to the HTTP requests held for them (bosh/bosh-route.ts).
      const socketPackets = bosh ? bosh.deliver(batch) : batch;
      if (socketPackets.length !== batch.length)
        entryIds = entryIds.filter((_, i) => batch[i].k !== "bosh");
      if (inProcess.used && !inProcess.refused && options.soleInboxWriter !== false) {
        const overtakable = socketPackets.find((p) => {
          const conn = registry.get(p.c);
          return conn?.writtenInProcess === true && conn.closeReason === undefined;
        });
        if (overtakable) {
          inProcess.refused = true;
          elog.error(
            { connId: overtakable.c },
            "a frame came through the inbox for a connection this process's session writes to directly: another process writes to this edge, so direct writes stop (run one session member only, --membership static)",
          );
        }
      }
      admission.sawSessionBatch(socketPackets, lookup);
      await deliverEdgeBatch(socketPackets, entryIds, outbound);
    },
    inboxAbort.signal,
    elog,
    inboxHealth,
    writeOwnSession,
  );
  const stopSweeper = startSweeper(registry, config, now, end);
  const samplerAbort = new AbortController();
  const sampler = runShardLagSampler(
    {
      bus,
      gate,
      intervalMs: config.shardLagSampleIntervalMs,
      log: elog,
      onOpened: () => publisher.shardsOpened(),
    },
    samplerAbort.signal,
  );
  const heartbeatHealth = new LoopHealth();
  const heartbeatAbort = new AbortController();
  const heartbeat = runEdgeHeartbeat(
    {
      ...claim,
      health: heartbeatHealth,
      // The sessions have ended our connections and taken our inbox: nothing here is valid,
      // and what is left in the inbox is the recovering session's, not ours to delete.
      onLost: () => void shutdown(0, true).then(onFatal, onFatal),
      // Sessions may have ended these connections when the marks vanished: their clients log
      // in again rather than hold sockets nobody can reach.
      onReset: () => {
        for (const conn of registry.values()) end(conn, "internal-error");
      },
    },
    heartbeatAbort.signal,
  );

  // What every transport's connections share (connection-lifecycle.ts).
  const connections = {
    edgeId,
    address,
    limits: config,
    assignShard: () => gate.pick(randomInt, options.preferredShards?.()),
    registry,
    admission,
    publisher,
    metrics,
    log: elog,
    now,
    end,
  };
  const app = uWS.App();
  // BOSH (XEP-0206) on the same listener; before the inbox reader hands over any answer.
  const bosh: BoshRoute | undefined = config.boshEnabled
    ? registerBoshRoute(app, {
        bus,
        address,
        edgeId,
        config,
        maxBodyBytes: maxPayloadLengthBytes(config.maxStanzaBytes),
        gate,
        trustedProxies: IpList.parse(config.trustedProxies),
        capacityRefusal,
        busy: () => stopping || publisher.paused,
        log: elog,
        now,
      })
    : undefined;
  app.ws<SocketData>(
    WEBSOCKET_PATH,
    socketBehavior({
      ...connections,
      upgrade: {
        allowedOrigins: parseAllowedOrigins(config.allowedOrigins),
        trustedProxies: IpList.parse(config.trustedProxies),
        capacityRefusal,
        metrics,
        log: elog,
      },
    }),
  );
  const ready = () =>
    listenSocket !== undefined &&
    !stopping &&
    bus.isReady() &&
    inboxHealth.isHealthy(config.readinessStaleMs) &&
    heartbeatHealth.isHealthy(config.edgeHeartbeatTtlMs) &&
    (options.alsoReady?.() ?? true);
  for (const more of options.moreMetrics ?? []) metrics.registry.include(more);
  if (webClient) registerWebClientRoutes(app, webClient, elog);
  // With a metrics port, the (public) client port keeps its probes but not /metrics.
  registerHealthRoutes(app, { ready, metrics: config.metricsPort ? undefined : metrics.registry });

  let metricsServer: HealthServer | undefined;
  let c2s: C2sListeners | undefined;
  try {
    listenSocket = await listen(app, config.host, config.port);
    c2s = await startC2s(config, { ...connections, domain: config.domain, capacityRefusal });
    if (config.metricsPort)
      metricsServer = await startHealthServer(
        config.host,
        config.metricsPort,
        ready,
        metrics.registry,
      ).catch((err: unknown) => {
        throw new Error(
          `edge cannot serve metrics on ${config.host}:${config.metricsPort} (MEGAPHONE_METRICS_PORT): ${err}`,
        );
      });
  } catch (err) {
    if (listenSocket) uWS.us_listen_socket_close(listenSocket);
    listenSocket = undefined;
    c2s?.close();
    stopSweeper();
    inboxAbort.abort();
    heartbeatAbort.abort();
    samplerAbort.abort();
    await Promise.all([inboxReader, heartbeat, sampler]);
    await edges.unregister(edgeId, address).catch(() => undefined);
    throw err;
  }
  const port = uWS.us_socket_local_port(listenSocket as unknown as us_socket);
  elog.info(
    {
      host: config.host,
      port,
      path: WEBSOCKET_PATH,
      bosh: bosh ? BOSH_PATH : undefined,
      metricsPort: metricsServer?.port,
    },
    "edge listening",
  );

  let stopped: Promise<void> | undefined;
  const hurry = new AbortController();
  const shutdown = (graceMs: number, lost: boolean): Promise<void> =>
    (stopped ??= (async () => {
      const deadline = Date.now() + graceMs;
      stopping = true; // /readyz 503, upgrades refused; the listen socket stays to say so
      const open = registry.size;
      await drainSockets({
        open: registry,
        close: (conn) => {
          if (conn.closed || conn.closeReason !== undefined) return false;
          end(conn, "drain");
          return true;
        },
        // A lost edge's connections are already ended by the sessions: nothing to spread.
        delayMs: lost ? 0 : config.drainDelayMs,
        windowMs: lost ? 0 : config.drainWindowMs,
        deadlineMs: deadline,
        hurry: hurry.signal,
        log: elog,
      });
      if (listenSocket) uWS.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
      c2s?.close();
      // BOSH clients ask again, through another edge, with the same rids.
      bosh?.releaseAll();
      bosh?.stopSweeper();
      // One whose upgrade was under way when the drain ended.
      for (const conn of registry.values()) end(conn, "drain");
      // The sessions must hear of every close, and what the edge holds is bounded anyway.
      samplerAbort.abort();
      gate.disable();
      publisher.shardsOpened();
      if (!(await settlesBy(publisher.settled(), deadline)))
        elog.warn({ inflight: publisher.inflight, held: publisher.held }, "grace ran out");
      stopSweeper();
      await settlesBy(sampler, deadline);
      inboxAbort.abort();
      await settlesBy(inboxReader, deadline);
      heartbeatAbort.abort();
      await settlesBy(heartbeat, deadline);
      if (!lost) {
        // The sessions may still have written to sockets that are closed now (they had not
        // applied the closes yet): whatever the reader did not deliver goes back to them, and
        // the inbox is deleted atomically with the last read, so a later write finds no inbox
        // and comes back as undelivered from the session itself. Only then is the id released.
        const drained = bus
          .recoverEdgeInbox(address, async (packets) => {
            await returnInboxPackets(bus, address, packets);
          })
          .then(() => edges.unregister(edgeId, address))
          .catch((err: unknown) => elog.warn({ err }, "draining the inbox on stop failed"));
        if (!(await settlesBy(drained, deadline)))
          elog.warn("grace ran out before the inbox was drained; a session will recover it");
      }
      // Last: /readyz says 503 and /metrics stays scrapable through the whole drain.
      await metricsServer?.close();
      elog.info({ closed: open }, "edge stopped");
    })());
  const stop = (graceMs = config.shutdownGraceMs): Promise<void> => shutdown(graceMs, false);

  return {
    port,
    metricsPort: metricsServer?.port,
    webClient: webClient && { path: "/", converseVersion: webClient.converseVersion },
    c2sPort: c2s?.c2sPort,
    c2sTlsPort: c2s?.c2sTlsPort,
    edgeId,
    address,
    connections: () => registry.size,
    stop,
    hurry: () => hurry.abort(),
  };
}

function listen(app: uWS.TemplatedApp, host: string, port: number): Promise<us_listen_socket> {
  return new Promise((resolve, reject) =>
    app.listen(host, port, (socket) =>
      socket
        ? resolve(socket)
        : reject(
            new Error(
              `edge cannot listen on ${host}:${port} (MEGAPHONE_HOST, MEGAPHONE_PORT): in use or not permitted`,
            ),
          ),
    ),
  );
}

/** Waits for `promise` until the wall-clock `deadlineMs`; true if it settled in time. */
function settlesBy(promise: Promise<unknown>, deadlineMs: number): Promise<boolean> {
  return settlesWithin(promise, Math.max(0, deadlineMs - Date.now()));
}
