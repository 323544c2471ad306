// The servers the benchmarks measure, each started fresh: ejabberd from Debian's package (the
// reference), Megaphone's mesh (Redis, E edges, S session members: "mesh" is 1+2, "mesh:2+2"
// any other) and the all-in-one. A name ending in "@before" runs the CLI of another built
// checkout (the baseline), for before/after figures from one sitting.
import { spawn, execFile } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchReport } from "../services/bench/report.js";
import { Mesh, spawnService, waitForHttp } from "../test/helpers/cluster.js";
import { connect, freePort } from "../test/helpers/redis-server.js";

/** This build's `megaphone` CLI. */
export const CLI = fileURLToPath(new URL("../services/cli/main.js", import.meta.url));

/** The value after `--name` on the command line, or `fallback`. */
export function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** A figure as the benches' tables print it: 3 significant places below 1, 2 below 100. */
export function fmt(n: number): string {
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toFixed(3);
}

export interface TargetOptions {
  /** Accounts bench1 … benchN, all with `password`. */
  users: number;
  password: string;
  /** A built checkout whose CLI the "@before" targets run. */
  baseline?: string;
  /** Settings for Megaphone's processes on top of the bench's own (e.g. more connections per edge). */
  env?: Record<string, string>;
  /**
   * benchN's password is `password` followed by N (tsung's convention) instead of `password`:
   * the accounts come from a file of "JID PASSWORD" lines (`user import --file`).
   */
  numberedPasswords?: boolean;
  /**
   * The accounts share one SCRAM salt (`user import --shared-salt`): one key derivation for the
   * import and one per generator process instead of one per user (100,000 take minutes at 4096
   * iterations). What a session holds does not depend on it; a login's cost on the generator does.
   */
  sharedSalt?: boolean;
  /**
   * Every edge also serves XMPP over TCP (c2s) on a loopback port of its own: with STARTTLS
   * required when given a certificate, else in plaintext without STARTTLS
   * (--c2s-require-tls false: loopback benchmarks only).
   */
  c2s?: { certFile?: string; keyFile?: string };
  /**
   * redis-server settings of the "@before" targets' Redis, as NAME=VALUE pairs: what the
   * baseline's deployment ran with where it differs from this build's (test/helpers/redis-server.ts).
   */
  beforeRedisConfig?: string[];
}

export interface Target {
  /** WebSocket endpoints, comma-separated (one per edge). */
  url: string;
  /** The TCP c2s port of each edge (on 127.0.0.1), when asked for by TargetOptions.c2s. */
  c2sPorts: number[];
  pids: number[];
  /** Megaphone's Redis, whose commands per message are counted (INFO commandstats). */
  redisUrl?: string;
  stop(): Promise<void>;
}

export function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(args[0], args.slice(1), { env, maxBuffer: 64 * 2 ** 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${args.join(" ")}: ${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

async function pidsMatching(pattern: string): Promise<number[]> {
  const out = await run(["pgrep", "-f", pattern]).catch(() => "");
  return out.split("\n").filter(Boolean).map(Number);
}

async function startEjabberd({ users, password }: TargetOptions): Promise<Target> {
  if (userInfo().uid !== 0) throw new Error("ejabberd is started as its own user: run as root");
  const dir = mkdtempSync(join(tmpdir(), "ejabberd-ref-"));
  const port = await freePort();
  const node = `ejref${port}@localhost`;
  // The reference as its package ships it, with what a chat server needs, shapers off (as
  // Megaphone's limits are raised for the bench) and SCRAM-SHA-256 storage.
  writeFileSync(
    join(dir, "ejabberd.yml"),
    `hosts: [localhost]
loglevel: warning
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
shaper_rules:
  max_user_sessions: 10
  c2s_shaper: none
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "loopback admin":
    from: [mod_http_api]
    who:
      ip: 127.0.0.1/8
    what: "*"
listen:
  - port: ${port}
    ip: "127.0.0.1"
    backlog: 4096
    module: ejabberd_http
    request_handlers:
      /ws: ejabberd_http_ws
      /api: mod_http_api
modules:
  mod_roster: {}
  mod_offline: {}
  mod_stream_mgmt: {}
  mod_disco: {}
  mod_ping: {}
  mod_admin_extra: {}
`,
  );
  // Its schedulers spin while idle by default (busy-wait), which would count as CPU per
  // message; turned off, as a server sharing its box would be run.
  writeFileSync(
    join(dir, "ejabberdctl.cfg"),
    'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 +sbwt none +sbwtdcpu none +sbwtdio none"\n',
  );
  await run(["mkdir", "-p", join(dir, "spool"), join(dir, "logs")]);
  await run(["chown", "-R", "ejabberd:ejabberd", dir]);
  chownSync(dir, 0, 0);
  await run(["chmod", "755", dir]);
  // Started as its own user with setpriv rather than through ejabberdctl's su, which resets
  // the open-files limit to 1024 (PAM): 1,000 clients would meet "too many open files" and
  // take the node down. With this process's limit (.ci/run and the README raise it to 20,000).
  const ctl = [
    "ejabberdctl",
    "--config-dir",
    dir,
    "--config",
    join(dir, "ejabberd.yml"),
    "--spool",
    join(dir, "spool"),
    "--logs",
    join(dir, "logs"),
    "--node",
    node,
    "foreground",
  ];
  const child = spawn(
    "setpriv",
    ["--reuid=ejabberd", "--regid=ejabberd", "--init-groups", ...ctl],
    {
      stdio: "ignore",
      cwd: join(dir, "spool"),
      env: { ...process.env, HOME: "/var/lib/ejabberd" },
    },
  );
  const api = `http://127.0.0.1:${port}/api`;
  const deadline = Date.now() + 60000;
  while (
    !(await fetch(`${api}/status`, { method: "POST", body: "{}" }).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (Date.now() > deadline) throw new Error("ejabberd did not start within 60 s");
    await new Promise((r) => setTimeout(r, 250));
  }
  // Accounts through its HTTP API, 32 at a time.
  for (let from = 1; from <= users; from += 32) {
    await Promise.all(
      Array.from({ length: Math.min(32, users - from + 1) }, (_, i) =>
        fetch(`${api}/register`, {
          method: "POST",
          body: JSON.stringify({ user: `bench${from + i}`, host: "localhost", password: password }),
        }).then((r) => {
          if (!r.ok) throw new Error(`ejabberd register: ${r.status}`);
        }),
      ),
    );
  }
  // The VM itself, not the su and sh processes that started it (their command lines name
  // the node too, and they use no CPU).
  const pids = (await pidsMatching(`beam.smp.*${node}`)).filter(
    (pid) => readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "beam.smp",
  );
  if (pids.length !== 1) throw new Error(`expected one beam.smp for ${node}, found ${pids.length}`);
  const limit = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pids[0]}/limits`, "utf8"));
  if (Number(limit?.[1]) < users + 100)
    throw new Error(`ejabberd may open ${limit?.[1]} files, too few for ${users} users: ulimit -n`);
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    c2sPorts: [],
    pids,
    async stop() {
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone already
        }
      }
      child.kill("SIGKILL");
      await run(["pkill", "-f", `epmd.*${node}`]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Settings both Megaphone targets run with: client limits raised as ejabberd's shaper is off. */
const MEGAPHONE_ENV = {
  MEGAPHONE_LOG_LEVEL: "error",
  // ejabberd's SCRAM iteration count: each login costs the client one PBKDF2 of that many
  // iterations (a salt per user), so the generator's share is the same for every target.
  MEGAPHONE_SCRAM_ITERATIONS: "4096",
  // PLAIN over ws:// on loopback, as ejabberd allows it there.
  MEGAPHONE_PLAIN_REQUIRES_TLS: "false",
  // FAST tokens over ws:// on loopback (the bench's --login fast).
  MEGAPHONE_FAST_REQUIRES_TLS: "false",
  MEGAPHONE_INBOUND_BYTES_PER_SECOND: String(64 * 2 ** 20),
  MEGAPHONE_INBOUND_BURST_BYTES: String(64 * 2 ** 20),
};

/** benchN's password (see TargetOptions.numberedPasswords). */
export function benchPassword(options: TargetOptions, n: number): string {
  return options.numberedPasswords ? `${options.password}${n}` : options.password;
}

/** An edge's settings for the c2s port TargetOptions.c2s asks for, or none. */
async function c2sEnvOf({ c2s }: TargetOptions): Promise<Record<string, string>> {
  if (!c2s) return {};
  const port = String(await freePort());
  if (!c2s.certFile || !c2s.keyFile)
    return { MEGAPHONE_C2S_PORT: port, MEGAPHONE_C2S_REQUIRE_TLS: "false" };
  return {
    MEGAPHONE_C2S_PORT: port,
    MEGAPHONE_TLS_CERT: c2s.certFile,
    MEGAPHONE_TLS_KEY: c2s.keyFile,
  };
}

/** The CLI a target runs: this build's, or the baseline's for "<target>@before". */
function cliOf(name: string, baseline: string | undefined): string {
  if (!name.endsWith("@before")) return CLI;
  if (!baseline) throw new Error(`target ${name} needs --baseline DIR (a built checkout)`);
  return join(baseline, "dist/services/cli/main.js");
}

/** Consecutive ranges splitting shards 0..count-1 among `parts` processes, as "a-b". */
function shardRanges(count: number, parts: number): string[] {
  return Array.from({ length: parts }, (_, i) => {
    const from = Math.floor((i * count) / parts);
    return `${from}-${Math.floor(((i + 1) * count) / parts) - 1}`;
  });
}

const SHARDS = 64;

/** Creates accounts bench1 … benchN with `megaphone user import`: a range, or a file when numbered. */
async function importAccounts(
  options: TargetOptions,
  cli: string,
  redisUrl: string,
): Promise<void> {
  const env = { ...process.env, ...MEGAPHONE_ENV, ...options.env, MEGAPHONE_REDIS: redisUrl };
  const { users, password } = options;
  if (!options.numberedPasswords) {
    const range = [
      "--range",
      "bench{n}@localhost",
      "--count",
      String(users),
      // A baseline build may predate --shared-salt: its accounts get a salt each.
      ...(options.sharedSalt && cli === CLI ? ["--shared-salt"] : []),
    ];
    await run([process.execPath, cli, "user", "import", ...range, "--password", password], env);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "megaphone-accounts-"));
  try {
    const file = join(dir, "accounts.txt");
    const lines = Array.from(
      { length: users },
      (_, i) => `bench${i + 1}@localhost ${benchPassword(options, i + 1)}\n`,
    );
    writeFileSync(file, lines.join(""));
    await run([process.execPath, cli, "user", "import", "--file", file], env);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function startMesh(
  options: TargetOptions,
  cli: string,
  edges: number,
  sessions: number,
): Promise<Target> {
  const beforeRedis = cli === CLI ? [] : (options.beforeRedisConfig ?? []);
  const mesh = await Mesh.start({
    redisArgs: beforeRedis.flatMap((pair) => {
      const at = pair.indexOf("=");
      return [`--${pair.slice(0, at)}`, pair.slice(at + 1)];
    }),
    shardCount: SHARDS,
    env: { ...MEGAPHONE_ENV, ...options.env, MEGAPHONE_SERVICE_CLI: cli },
  });
  const members = await Promise.all(
    shardRanges(SHARDS, sessions).map((range, i) => mesh.session(`s${i + 1}`, range)),
  );
  // Each edge assigns new connections to every shard: the sessions share every edge's load.
  const c2sEnvs = await Promise.all(Array.from({ length: edges }, () => c2sEnvOf(options)));
  const edgeProcesses = await Promise.all(
    c2sEnvs.map((c2sEnv, i) => mesh.edge(`e${i + 1}`, `0-${SHARDS - 1}`, c2sEnv)),
  );
  await importAccounts(options, cli, mesh.redis.url);
  const redisPid = "process" in mesh.redis ? mesh.redis.process.pid : undefined;
  return {
    url: edgeProcesses.map((e) => e.url).join(","),
    c2sPorts: c2sEnvs.flatMap((env) =>
      env.MEGAPHONE_C2S_PORT ? [Number(env.MEGAPHONE_C2S_PORT)] : [],
    ),
    redisUrl: mesh.redis.url,
    pids: [
      ...edgeProcesses.map((e) => e.process.pid),
      ...members.map((s) => s.process.pid),
      redisPid,
    ].filter((pid): pid is number => pid !== undefined),
    stop: () => mesh.stop(),
  };
}

/**
 * Nodes (`megaphone node`): Redis and `count` processes, each an edge and a session member
 * serving a fixed range of the shards, which its edge gives to new connections (so every
 * connection's shard is its own node's, as local-first assignment makes it after a rebalance).
 */
async function startNodes(options: TargetOptions, cli: string, count: number): Promise<Target> {
  const mesh = await Mesh.start({
    shardCount: SHARDS,
    env: { ...MEGAPHONE_ENV, ...options.env, MEGAPHONE_SERVICE_CLI: cli },
  });
  const c2sEnvs = await Promise.all(Array.from({ length: count }, () => c2sEnvOf(options)));
  const ranges = shardRanges(SHARDS, count);
  const nodes = await Promise.all(
    c2sEnvs.map((c2sEnv, i) => mesh.node(`n${i + 1}`, c2sEnv, ranges[i])),
  );
  await importAccounts(options, cli, mesh.redis.url);
  const redisPid = "process" in mesh.redis ? mesh.redis.process.pid : undefined;
  return {
    url: nodes.map((n) => n.url).join(","),
    c2sPorts: c2sEnvs.flatMap((env) =>
      env.MEGAPHONE_C2S_PORT ? [Number(env.MEGAPHONE_C2S_PORT)] : [],
    ),
    redisUrl: mesh.redis.url,
    pids: [...nodes.map((n) => n.process.pid), redisPid].filter(
      (pid): pid is number => pid !== undefined,
    ),
    stop: () => mesh.stop(),
  };
}

/**
 * The all-in-one on Redis (`megaphone start --redis`): edge and session in one process, every
 * packet still through Redis streams as in the mesh. Against mesh 1+1 it tells what merging
 * the processes saves by itself, with the same number of stops per message. `alone`: with
 * static membership of itself, so its replies reach its edge in process (services.ts).
 */
async function startAllInOneOnRedis(
  options: TargetOptions,
  cli: string,
  alone: boolean,
): Promise<Target> {
  const mesh = await Mesh.start({ shardCount: SHARDS });
  await importAccounts(options, cli, mesh.redis.url);
  const port = await freePort();
  const c2sEnv = await c2sEnvOf(options);
  const service = spawnService(
    "all-in-one",
    ["start", "--port", String(port), "--host", "127.0.0.1", "--redis", mesh.redis.url],
    {
      ...MEGAPHONE_ENV,
      ...options.env,
      ...c2sEnv,
      MEGAPHONE_SHARD_COUNT: String(SHARDS),
      MEGAPHONE_SERVICE_CLI: cli,
      ...(alone ? { MEGAPHONE_MEMBERSHIP: "static" } : {}),
    },
  );
  await waitForHttp(`http://127.0.0.1:${port}/readyz`, service, 120000);
  const redisPid = "process" in mesh.redis ? mesh.redis.process.pid : undefined;
  return {
    url: `ws://127.0.0.1:${port}/xmpp-websocket`,
    c2sPorts: c2sEnv.MEGAPHONE_C2S_PORT ? [Number(c2sEnv.MEGAPHONE_C2S_PORT)] : [],
    redisUrl: mesh.redis.url,
    pids: [service.process.pid, redisPid].filter((pid): pid is number => pid !== undefined),
    stop: async () => {
      await service.stop(process.env.MEGAPHONE_SERVICE_NODE_ARGS ? "SIGTERM" : "SIGKILL");
      await mesh.stop();
    },
  };
}

async function startAllInOne(options: TargetOptions, cli: string): Promise<Target> {
  const port = await freePort();
  // In memory: the accounts are given on the command line (there is no store to import into).
  const accounts = Array.from({ length: options.users }, (_, i) => [
    "--user",
    `bench${i + 1}@localhost:${benchPassword(options, i + 1)}`,
  ]).flat();
  const c2sEnv = await c2sEnvOf(options);
  const service = spawnService(
    "all-in-one",
    ["start", "--port", String(port), "--host", "127.0.0.1", ...accounts],
    { ...MEGAPHONE_ENV, ...options.env, ...c2sEnv, MEGAPHONE_SERVICE_CLI: cli },
  );
  await waitForHttp(`http://127.0.0.1:${port}/readyz`, service, 120000);
  return {
    url: `ws://127.0.0.1:${port}/xmpp-websocket`,
    c2sPorts: c2sEnv.MEGAPHONE_C2S_PORT ? [Number(c2sEnv.MEGAPHONE_C2S_PORT)] : [],
    pids: [service.process.pid!],
    // SIGTERM when profiling (MEGAPHONE_SERVICE_NODE_ARGS), so that the process writes its profile.
    stop: async () => {
      await service.stop(process.env.MEGAPHONE_SERVICE_NODE_ARGS ? "SIGTERM" : "SIGKILL");
    },
  };
}

/**
 * Starts target `name`: "ejabberd", "all-in-one", "all-in-one:redis" (the all-in-one on Redis),
 * "all-in-one:redis:alone" (the same, the only member: replies to its edge in process), "mesh"
 * (1 edge, 2 sessions), "mesh:E+S" or "nodes:N" (N nodes), each optionally "@before" (the
 * baseline's build).
 */
export function startTarget(name: string, options: TargetOptions): Promise<Target> {
  const cli = cliOf(name, options.baseline);
  const base = name.replace(/@before$/, "");
  if (base === "ejabberd") {
    if (cli !== CLI) throw new Error("ejabberd has no baseline build");
    if (options.c2s || options.numberedPasswords)
      throw new Error("the ejabberd target serves WebSocket only, one password for all");
    return startEjabberd(options);
  }
  if (base === "all-in-one") return startAllInOne(options, cli);
  if (base === "all-in-one:redis") return startAllInOneOnRedis(options, cli, false);
  if (base === "all-in-one:redis:alone") return startAllInOneOnRedis(options, cli, true);
  const nodes = /^nodes:(\d+)$/.exec(base);
  if (nodes) return startNodes(options, cli, Number(nodes[1]));
  const topology = /^mesh(?::(\d+)\+(\d+))?$/.exec(base);
  if (!topology) throw new Error(`unknown target ${name}`);
  return startMesh(options, cli, Number(topology[1] ?? 1), Number(topology[2] ?? 2));
}

/** Calls per command since Redis started (INFO commandstats). */
export async function redisCalls(url: string | undefined): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  if (!url) return calls;
  const redis = connect(url);
  try {
    const info = await redis.info("commandstats");
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1], Number(m[2]));
    return calls;
  } finally {
    redis.disconnect();
  }
}

/**
 * One `megaphone bench` run against `target`; its report. With `echo`, its progress line and
 * its report go to this process's stderr as it runs (a long idle ramp is otherwise silent).
 */
export async function bench(
  target: Target,
  password: string,
  args: string[],
  echo = false,
  sources = "127.0.0.1-127.0.0.32",
): Promise<BenchReport> {
  const json = join(tmpdir(), `bench-${process.pid}-${Date.now()}.json`);
  try {
    await (echo ? runEchoed : run)([
      process.execPath,
      CLI,
      ...args,
      "--url",
      target.url,
      "--password",
      password,
      "--source-addresses",
      sources,
      "--pids",
      target.pids.join(","),
      "--json",
      json,
    ]).catch(() => {
      // Exit 1: a login failed or a message was lost; the report says which.
    });
    return JSON.parse(readFileSync(json, "utf8")) as BenchReport;
  } finally {
    rmSync(json, { force: true });
  }
}

/** Runs a command with its stdout and stderr on this process's stderr; rejects on failure. */
function runEchoed(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(args[0], args.slice(1), { stdio: ["ignore", 2, 2] });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}
