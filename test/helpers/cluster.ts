// Runs the real mesh for end-to-end tests: a private redis-server (or a private Redis Cluster
// of three primaries), edges and sessions as separate `megaphone` processes (the same binary
// users run), and accounts created through `megaphone user add`.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createRedis } from "../../services/shared/redis/client.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { RedisAccountStore } from "../../services/shared/stores/account/redis-account-store.js";
import { createAccount } from "../../services/session/core/sasl/sasl-credentials.js";
import {
  CROSS_SLOT,
  crossSlotErrors,
  startRedisCluster,
  type RedisCluster,
} from "./redis-cluster.js";
import { connect, freePort, startRedis, type RedisServer } from "./redis-server.js";

const CLI = fileURLToPath(new URL("../../services/cli/main.js", import.meta.url));
const run = promisify(execFile);

export interface ServiceProcess {
  name: string;
  process: ChildProcess;
  /** The last lines it printed (for failure messages). */
  output(): string;
  /** Every line it printed that matched the `flag` pattern it was spawned with (at most 100). */
  flagged: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface EdgeProcess extends ServiceProcess {
  port: number;
  url: string;
}

export interface SessionProcess extends ServiceProcess {
  httpPort: number;
}

export function spawnService(
  name: string,
  args: string[],
  env: Record<string, string> = {},
  flag?: RegExp,
): ServiceProcess {
  // Extra node flags for the services only (e.g. --cpu-prof while profiling a bench run).
  const nodeArgs = process.env.MEGAPHONE_SERVICE_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  // Another build's CLI (a benchmark's baseline, bench/side-by-side.ts --baseline).
  const cli = env.MEGAPHONE_SERVICE_CLI ?? CLI;
  const child = spawn(process.execPath, [...nodeArgs, cli, ...args], {
    env: {
      ...process.env,
      MEGAPHONE_LOG_LEVEL: process.env.MEGAPHONE_TEST_LOG_LEVEL ?? "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const flagged: string[] = [];
  const keep = (b: Buffer) => {
    const fresh = b.toString().split("\n").filter(Boolean);
    lines.push(...fresh);
    if (lines.length > 200) lines.splice(0, lines.length - 200);
    if (flag)
      flagged.push(...fresh.filter((line) => flag.test(line)).slice(0, 100 - flagged.length));
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return {
    name,
    process: child,
    output: () => lines.join("\n"),
    flagged,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((resolve) =>
        child.once("exit", (code) => resolve(code)),
      );
      child.kill(signal);
      return exited;
    },
  };
}

/** Polls an HTTP URL until it answers 200 (bounded), failing with the process's output. */
export async function waitForHttp(
  url: string,
  service: ServiceProcess,
  timeoutMs = 15000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (service.process.exitCode !== null)
      throw new Error(`${service.name} exited (${service.process.exitCode}):\n${service.output()}`);
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`${service.name} not ready at ${url}:\n${service.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The value of a metric on a process's /metrics (summed over its label sets), or of one label
 * set when `name` includes it (e.g. 'x_total{change="lost"}'); NaN when it is not there.
 */
export async function metricValue(httpPort: number, name: string): Promise<number> {
  return metricInText(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text(), name);
}

/** metricValue of a registry's text (the Prometheus text format). */
export function metricInText(text: string, name: string): number {
  let sum = NaN;
  for (const line of text.split("\n"))
    if (line.startsWith(name + " ") || line.startsWith(name + "{"))
      sum = (Number.isNaN(sum) ? 0 : sum) + Number(line.slice(line.lastIndexOf(" ") + 1));
  return sum;
}

export interface MeshOptions {
  shardCount?: number;
  /** Extra settings for every process, as MEGAPHONE_* variables. */
  env?: Record<string, string>;
  /**
   * "cluster": a Redis Cluster of three primaries instead of one redis-server. Unset: what
   * MEGAPHONE_TEST_REDIS says (default "server"), so a whole e2e run can be moved onto a cluster;
   * tests that reach one redis-server directly (pauseRedis, ACL fault injection) need "server".
   */
  redis?: "server" | "cluster";
  /** Output lines of every process matching this are kept in its `flagged`. */
  flag?: RegExp;
  /** More redis-server options for a single server (startRedis). */
  redisArgs?: string[];
}

export class Mesh {
  readonly services: ServiceProcess[] = [];
  readonly domain = "localhost";
  private constructor(
    readonly redis: RedisServer | RedisCluster,
    private readonly options: MeshOptions,
  ) {}

  static async start(options: MeshOptions = {}): Promise<Mesh> {
    const kind = options.redis ?? process.env.MEGAPHONE_TEST_REDIS ?? "server";
    if (kind !== "server" && kind !== "cluster")
      throw new Error(`MEGAPHONE_TEST_REDIS must be "server" or "cluster", not "${kind}"`);
    const redis =
      kind === "cluster" ? await startRedisCluster() : await startRedis(options.redisArgs);
    return new Mesh(redis, options);
  }

  /** The one redis-server (pausing it is a single-server fault). */
  private server(): RedisServer {
    if (!("process" in this.redis)) throw new Error("this mesh runs on a Redis Cluster");
    return this.redis;
  }

  /** The MEGAPHONE_* settings every process of this mesh gets. */
  env(): Record<string, string> {
    return {
      MEGAPHONE_REDIS: this.redis.url,
      MEGAPHONE_DOMAIN: this.domain,
      MEGAPHONE_SHARD_COUNT: String(this.options.shardCount ?? 8),
      MEGAPHONE_SCRAM_ITERATIONS: "4096",
      // The tests' clients speak ws:// on loopback, and several log in with PLAIN or FAST.
      MEGAPHONE_PLAIN_REQUIRES_TLS: "false",
      MEGAPHONE_FAST_REQUIRES_TLS: "false",
      ...this.options.env,
    };
  }

  /** An edge that assigns new connections to `shards` (ranges), so tests choose the session. */
  async edge(id: string, shards: string, env: Record<string, string> = {}): Promise<EdgeProcess> {
    const port = await freePort();
    const service = spawnService(
      `edge ${id}`,
      ["edge", "--id", id, "--port", String(port), "--host", "127.0.0.1", "--shards", shards],
      {
        ...this.env(),
        ...env,
      },
      this.flag(),
    );
    this.services.push(service);
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, service);
    return { ...service, port, url: `ws://127.0.0.1:${port}/xmpp-websocket` };
  }

  /**
   * A session member serving `shards` (ranges), or, with "", whatever shards the membership
   * gives it (rendezvous over the live members).
   */
  async session(
    id: string,
    shards: string,
    env: Record<string, string> = {},
  ): Promise<SessionProcess> {
    const httpPort = await freePort();
    const service = spawnService(
      `session ${id}`,
      [
        "session",
        "--id",
        id,
        ...(shards === "" ? [] : ["--shards", shards]),
        "--http-port",
        String(httpPort),
        "--host",
        "127.0.0.1",
      ],
      { ...this.env(), ...env },
      this.flag(),
    );
    this.services.push(service);
    await waitForHttp(`http://127.0.0.1:${httpPort}/readyz`, service);
    return { ...service, httpPort };
  }

  /**
   * A node: an edge and a session member in one process (`megaphone node`), serving whatever
   * shards the membership gives it, or `shards` (ranges: its member serves them and its edge
   * gives them to new connections); its port serves WebSocket and /readyz.
   */
  async node(id: string, env: Record<string, string> = {}, shards = ""): Promise<EdgeProcess> {
    const port = await freePort();
    const service = spawnService(
      `node ${id}`,
      [
        "node",
        "--id",
        id,
        "--port",
        String(port),
        "--host",
        "127.0.0.1",
        ...(shards === "" ? [] : ["--shards", shards]),
      ],
      { ...this.env(), ...env },
      this.flag(),
    );
    this.services.push(service);
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, service);
    return { ...service, port, url: `ws://127.0.0.1:${port}/xmpp-websocket` };
  }

  async addUser(jid: string, password: string): Promise<void> {
    await run(process.execPath, [CLI, "user", "add", jid, "--password", password], {
      env: { ...process.env, ...this.env() },
    });
  }

  /** Creates many accounts at once, in this process (`user add` spawns one process each). */
  async addUsers(users: { jid: string; password: string }[]): Promise<void> {
    const redis = createRedis(this.redis.url, "megaphone-test-accounts");
    try {
      const accounts = new RedisAccountStore(redis, redisKeys());
      await Promise.all(
        users.map(({ jid, password }) => accounts.create(jid, createAccount(password, 4096))),
      );
    } finally {
      redis.disconnect();
    }
  }

  /** Makes Redis unreachable (SIGSTOP then, on resume, SIGCONT): connections time out. */
  async pauseRedis(): Promise<void> {
    // Stopped, it keeps its data and port; clients' sockets stay open but get no answers, so
    // we also drop them to make the outage visible at once.
    const server = this.server();
    const admin = connect(server.url);
    await admin.call("CLIENT", "KILL", "TYPE", "normal").catch(() => undefined);
    admin.disconnect();
    server.process.kill("SIGSTOP");
  }

  async resumeRedis(): Promise<void> {
    this.server().process.kill("SIGCONT");
  }

  /**
   * Stops everything. On a Redis Cluster it then fails if any command of the run crossed slots
   * (refused by a node, or refused by a client and logged), whatever the test checked itself.
   */
  async stop(): Promise<void> {
    if ("process" in this.redis) this.redis.process.kill("SIGCONT");
    // A profiled service writes its profile on a clean exit only.
    const signal = process.env.MEGAPHONE_SERVICE_NODE_ARGS ? "SIGTERM" : "SIGKILL";
    await Promise.all(this.services.map((s) => s.stop(signal)));
    const refused = "process" in this.redis ? 0 : await crossSlotErrors(this.redis);
    await this.redis.stop();
    const logged = this.services.flatMap((s) => s.flagged.map((line) => `${s.name}: ${line}`));
    if (refused > 0 || ("nodes" in this.redis && logged.length > 0))
      throw new Error(
        `commands crossed Redis Cluster slots: ${refused} refused by the nodes; logged:\n${logged.join("\n")}`,
      );
  }

  /** What every process's output is searched for: the cross-slot errors on a cluster. */
  private flag(): RegExp | undefined {
    return this.options.flag ?? ("nodes" in this.redis ? CROSS_SLOT : undefined);
  }
}
