// bench:hop — K pairs of real XMPP clients exchange M messages each through the real mesh
// (Redis, 2 edges, 2 session processes). Sender i sits on edge 1 / session 1, receiver i on
// edge 2 / session 2, so every message crosses both tiers and Redis twice. Each pair keeps at
// most W messages in flight (closed loop): the figure is capacity at bounded latency, not the
// collapse of an open-loop overload. Prints messages/s and p50/p99/max delivery latency.
// With --heavy-roster N, the same run measures twice: quiet, then while a user with N roster
// contacts logs in again and again on session 1 (each login's presence fans out to N contacts
// and its roster is N items): the ratio of the two p99s shows how far one slow connection
// holds up everyone else's stanzas (issue 6 item 8).
//
// In the same run, the same closed loop over two bare Redis Streams hops (bench/raw-hop.ts: Node
// and ioredis only, on the same Redis) gives the ceiling; the ratio of the two throughputs is
// printed (issue 9's target: at least 50 %).
//
//   npm run bench:hop -- [--pairs 50] [--messages 200] [--window 10] [--heavy-roster 1000]
//       [--client raw|xmppjs] [--nodes]
//
// --nodes: two `megaphone node` processes (an edge and a session member each) instead of the
// two edges and two sessions, sender i on node 1 and receiver i on node 2: a message then
// crosses Redis once (node 1's member routes it into the shard inbox node 2's member reads),
// as a message between two nodes does.
//
// The pairs are raw-frame clients (services/client/ws-xmpp-client.ts, as `megaphone bench`
// uses), so that the generator costs little of the two cores the mesh runs on; --client xmppjs
// uses @xmpp/client with XEP-0198 instead (each unit then saves a snapshot: counters change).
//
// Profiling the services: MEGAPHONE_SERVICE_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof" passes
// the flags to every edge and session process (not to this one), which are then stopped with
// SIGTERM so they write their profiles.
import { performance } from "node:perf_hooks";
import { cpus } from "node:os";
import { createAccount } from "../services/session/core/sasl/sasl-credentials.js";
import { RedisAccountStore } from "../services/shared/stores/account/redis-account-store.js";
import { RedisRosterStore } from "../services/shared/stores/roster/redis-roster-store.js";
import { redisKeys } from "../services/shared/redis/keys.js";
import { Mesh } from "../test/helpers/cluster.js";
import { rawHop } from "./raw-hop.js";
import { connect } from "../test/helpers/redis-server.js";
import { TestUser, xml } from "../test/helpers/xmpp-client.js";
import { WsXmppClient } from "../services/client/ws-xmpp-client.js";
import { sampleProcess } from "../services/bench/proc-stats.js";

function option(name: string, fallback: number, min = 1): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < min)
    throw new Error(`--${name} must be an integer of at least ${min}`);
  return value;
}

const PAIRS = option("pairs", 50);
const MESSAGES = option("messages", 200);
const WINDOW = option("window", 10);
const DEADLINE_MS = option("deadline-ms", 180000);
const HEAVY_ROSTER = option("heavy-roster", 0, 0);
const CLIENT = process.argv.includes("--client")
  ? process.argv[process.argv.indexOf("--client") + 1]
  : "raw";
if (CLIENT !== "raw" && CLIENT !== "xmppjs") throw new Error("--client must be raw or xmppjs");
const NODES = process.argv.includes("--nodes");

/** One side of a pair: sends chat bodies, hears message bodies. */
interface PairClient {
  sendChat(to: string, body: string): void;
  onBody(listener: ((body: string) => void) | undefined): void;
  stop(): Promise<void>;
}

const BODY = /<body[^>]*>([^<]*)<\/body>/;

async function rawClient(url: string, username: string): Promise<PairClient> {
  const client = new WsXmppClient({
    url,
    domain: "localhost",
    username,
    password: "pw",
    mechanism: "SCRAM-SHA-256",
    resource: "hop",
    presenceAndRoster: true,
    timeoutMs: 30000,
  });
  await client.login();
  let listener: ((body: string) => void) | undefined;
  client.onMessage = (frame) => {
    const body = BODY.exec(frame)?.[1];
    if (body !== undefined) listener?.(body);
  };
  return {
    sendChat: (to, body) =>
      client.send(
        `<message xmlns='jabber:client' to='${to}' type='chat'><body>${body}</body></message>`,
      ),
    onBody: (next) => void (listener = next),
    stop: async () => client.close(),
  };
}

async function xmppjsClient(url: string, username: string): Promise<PairClient> {
  const user = await TestUser.connect({ service: url, username, password: "pw" });
  await user.send(xml("presence"));
  await user.ping();
  let listener: ((body: string) => void) | undefined;
  user.xmpp.on("stanza", (el) => {
    if (el.is("message")) listener?.(el.getChildText("body") ?? "");
  });
  return {
    sendChat: (to, body) =>
      void user
        .send(xml("message", { to, type: "chat" }, xml("body", {}, body)))
        .catch((err: unknown) => console.error(`${username}: send failed`, err)),
    onBody: (next) => void (listener = next),
    stop: () => user.stop(),
  };
}

const pairClient = CLIENT === "raw" ? rawClient : xmppjsClient;

/** Calls per command since the server started (INFO commandstats). */
async function commandStats(redis: ReturnType<typeof connect>): Promise<Map<string, number>> {
  const info = await redis.info("commandstats");
  const stats = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) stats.set(m[1], Number(m[2]));
  return stats;
}

interface CpuTier {
  name: "edges" | "sessions" | "nodes" | "redis";
  pids: (number | undefined)[];
}

type CpuByTier = Record<CpuTier["name"] | "self", number>;

function cpuSeconds(tiers: CpuTier[]): CpuByTier {
  const usage = process.cpuUsage();
  const sums: CpuByTier = {
    edges: 0,
    sessions: 0,
    nodes: 0,
    redis: 0,
    self: (usage.user + usage.system) / 1e6,
  };
  for (const tier of tiers)
    for (const pid of tier.pids) sums[tier.name] += (pid && sampleProcess(pid)?.cpuSeconds) || 0;
  return sums;
}

function cpuSince(tiers: CpuTier[], before: CpuByTier): CpuByTier {
  const now = cpuSeconds(tiers);
  return {
    edges: now.edges - before.edges,
    sessions: now.sessions - before.sessions,
    nodes: now.nodes - before.nodes,
    redis: now.redis - before.redis,
    self: now.self - before.self,
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(): Promise<void> {
  const mesh = await Mesh.start({
    shardCount: 64,
    env: {
      MEGAPHONE_LOG_LEVEL: "error",
      // Each sender sends two rounds back to back: far more than one client's default rate.
      MEGAPHONE_INBOUND_BYTES_PER_SECOND: String(64 * 1024 * 1024),
      MEGAPHONE_INBOUND_BURST_BYTES: String(64 * 1024 * 1024),
    },
  });
  const stopAll = setTimeout(() => {
    console.error(`bench did not finish within ${DEADLINE_MS} ms`);
    void mesh.stop().finally(() => process.exit(1));
  }, DEADLINE_MS);
  const users: PairClient[] = [];
  try {
    const [s1, s2] = NODES
      ? [undefined, undefined]
      : await Promise.all([mesh.session("s1", "0-31"), mesh.session("s2", "32-63")]);
    const [edge1, edge2] = NODES
      ? await Promise.all([mesh.node("n1", {}, "0-31"), mesh.node("n2", {}, "32-63")])
      : await Promise.all([mesh.edge("e1", "0-31"), mesh.edge("e2", "32-63")]);

    const redis = connect(mesh.redis.url);
    const accounts = new RedisAccountStore(redis, redisKeys());
    for (let i = 0; i < PAIRS; i++) {
      await accounts.create(`a${i}@localhost`, createAccount("pw", 4096));
      await accounts.create(`b${i}@localhost`, createAccount("pw", 4096));
    }

    const senders: PairClient[] = [];
    const receivers: PairClient[] = [];
    for (let i = 0; i < PAIRS; i++) {
      senders.push(await pairClient(edge1.url, `a${i}`));
      receivers.push(await pairClient(edge2.url, `b${i}`));
    }
    users.push(...senders, ...receivers);

    /** One round: every pair sends MESSAGES messages; delivery latencies and elapsed time. */
    const measure = async (): Promise<{ latencies: number[]; elapsedMs: number }> => {
      const latencies: number[] = [];
      const started = performance.now();
      await Promise.all(
        senders.map(async (sender, i) => {
          const receiver = receivers[i];
          let sent = 0;
          let received = 0;
          await new Promise<void>((resolve) => {
            const sendOne = () => {
              sent++;
              sender.sendChat(`b${i}@localhost`, String(performance.now()));
            };
            receiver.onBody((body) => {
              latencies.push(performance.now() - Number(body));
              received++;
              if (received === MESSAGES) {
                receiver.onBody(undefined);
                resolve();
              } else if (sent < MESSAGES) sendOne();
            });
            for (let w = 0; w < Math.min(WINDOW, MESSAGES); w++) sendOne();
          });
        }),
      );
      latencies.sort((a, b) => a - b);
      return { latencies, elapsedMs: performance.now() - started };
    };

    const total = PAIRS * MESSAGES;
    const row = (
      label: string,
      { latencies, elapsedMs }: { latencies: number[]; elapsedMs: number },
    ) =>
      `| ${label} | ${PAIRS} | ${MESSAGES} | ${WINDOW} | ${total} | ${(elapsedMs / 1000).toFixed(2)} | ${Math.round(
        (total / elapsedMs) * 1000,
      )} | ${percentile(latencies, 50).toFixed(1)} | ${percentile(latencies, 99).toFixed(1)} | ${latencies[
        latencies.length - 1
      ].toFixed(1)} |`;

    // CPU per message by tier: throughput alone moves with whatever else shares the cores.
    const redisTier: CpuTier = {
      name: "redis",
      pids: "process" in mesh.redis ? [mesh.redis.process.pid] : [],
    };
    const tiers: CpuTier[] = NODES
      ? [{ name: "nodes", pids: [edge1.process.pid, edge2.process.pid] }, redisTier]
      : [
          { name: "edges", pids: [edge1.process.pid, edge2.process.pid] },
          { name: "sessions", pids: [s1?.process.pid, s2?.process.pid] },
          redisTier,
        ];

    // A first round warms the processes up (JIT, connection pools); its figures are dropped.
    await measure();
    const statsBefore = await commandStats(redis);
    const cpuBefore = cpuSeconds(tiers);
    const quiet = await measure();
    const quietCpu = cpuSince(tiers, cpuBefore);
    const statsAfter = await commandStats(redis);
    // The ceiling, warmed up the same way.
    await rawHop(mesh.redis.url, PAIRS, MESSAGES, WINDOW);
    const rawCpuBefore = cpuSeconds(tiers);
    const raw = await rawHop(mesh.redis.url, PAIRS, MESSAGES, WINDOW);
    const rawCpu = cpuSince(tiers, rawCpuBefore);
    let heavy: { latencies: number[]; elapsedMs: number; logins: number } | undefined;
    if (HEAVY_ROSTER > 0) {
      const rosters = new RedisRosterStore(redis, redisKeys());
      await accounts.create("heavy@localhost", createAccount("pw", 4096));
      for (let c = 0; c < HEAVY_ROSTER; c += 500)
        await Promise.all(
          Array.from({ length: Math.min(500, HEAVY_ROSTER - c) }, (_, k) =>
            rosters.replaceItem(
              "heavy@localhost",
              `c${c + k}@localhost`,
              undefined,
              { jid: `c${c + k}@localhost`, subscription: "both", groups: [] },
              HEAVY_ROSTER,
            ),
          ),
        );
      let measuring = true;
      let logins = 0;
      const relogging = (async () => {
        while (measuring) {
          const user = await TestUser.connect({
            service: edge1.url,
            username: "heavy",
            password: "pw",
          });
          await user.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
          await user.send(xml("presence"));
          await user.ping();
          await user.stop();
          logins++;
        }
      })();
      const round = await measure();
      measuring = false;
      await relogging;
      heavy = { ...round, logins };
    }
    redis.disconnect();
    console.log(
      `\nbench:hop on ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), node ${process.version}; ${CLIENT === "raw" ? "raw-frame clients, no XEP-0198" : "@xmpp/client with XEP-0198"}; ${NODES ? "two nodes (one Redis hop per message)" : "two edges and two sessions (two Redis hops per message)"}`,
    );
    console.log(
      `| round | pairs | messages/pair | window | total | elapsed s | messages/s | p50 ms | p99 ms | max ms |`,
    );
    console.log(`|---|---|---|---|---|---|---|---|---|---|`);
    console.log(row("quiet", quiet));
    console.log(row("raw Node + ioredis, two hops (the ceiling)", raw));
    if (heavy) {
      console.log(row(`${heavy.logins} logins of a ${HEAVY_ROSTER}-contact user`, heavy));
      const ratio = percentile(heavy.latencies, 99) / percentile(quiet.latencies, 99);
      console.log(`\np99 with the heavy logins / quiet p99: ${ratio.toFixed(2)}`);
    }
    console.log(
      `\nmessages/s, Megaphone ÷ the ceiling: ${(raw.elapsedMs / quiet.elapsedMs).toFixed(2)}`,
    );
    // The ceiling's relay runs in this process, where Megaphone's clients run: the two
    // rounds' "this process" columns hold different work, and only Megaphone's servers count.
    const ms = (seconds: number) => ((seconds * 1000) / total).toFixed(3);
    console.log(`\nCPU ms per message (user + system, /proc)`);
    console.log(`| round | edges | sessions | nodes | redis | servers | this process |`);
    console.log(`|---|---|---|---|---|---|---|`);
    for (const [label, cpu] of [
      ["quiet", quietCpu],
      ["raw Node + ioredis (relay in this process)", rawCpu],
    ] as const)
      console.log(
        `| ${label} | ${ms(cpu.edges)} | ${ms(cpu.sessions)} | ${ms(cpu.nodes)} | ${ms(cpu.redis)} | ${ms(
          cpu.edges + cpu.sessions + cpu.nodes + cpu.redis,
        )} | ${ms(cpu.self)} |`,
      );
    const rawTotal = rawCpu.redis + rawCpu.self;
    const quietTotal = quietCpu.edges + quietCpu.sessions + quietCpu.nodes + quietCpu.redis;
    console.log(
      `\nCPU per message, Megaphone's servers ÷ the ceiling's (Redis + relay): ${(quietTotal / rawTotal).toFixed(2)}`,
    );
    const perMessage = [...statsAfter]
      .map(([cmd, calls]) => [cmd, (calls - (statsBefore.get(cmd) ?? 0)) / total] as const)
      .filter(([, n]) => n >= 0.01)
      .sort((a, b) => b[1] - a[1]);
    console.log(
      `\nRedis commands per message (INFO commandstats; includes pings, snapshots, acks): ` +
        perMessage.map(([cmd, n]) => `${cmd} ${n.toFixed(2)}`).join(", "),
    );
  } finally {
    await Promise.all(users.map((u) => u.stop()));
    await mesh.stop();
    clearTimeout(stopAll);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
