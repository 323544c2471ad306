// bench:side-by-side — the same `megaphone bench chat` load against ejabberd (the reference, from
// Debian's package) and Megaphone (a mesh: Redis, one edge, two sessions; and the all-in-one),
// one after the other in one sitting, each target started fresh, in alternating order over
// several rounds. The machine is shared and noisy: compare the ratios, not the absolute figures.
//
//   npm run bench:side-by-side -- [--users 1000] [--login-rate 200] [--rate 2000]
//       [--duration 20] [--rounds 2] [--targets ejabberd,mesh,all-in-one] [--json FILE]
//       [--baseline DIR]
//
// Before/after in one sitting: `--baseline DIR` names another checkout, built (e.g. a git
// worktree of the previous release), and targets "mesh@before" and "all-in-one@before" run its
// CLI: `--targets mesh@before,mesh --baseline ../before`.
//
// Needs ejabberd (apt-get install ejabberd) and root (ejabberd runs as its own user).
import { spawn, execFile } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchReport } from "../services/bench/report.js";
import { sampleAll } from "../services/bench/proc-stats.js";
import { Mesh, spawnService, waitForHttp } from "../test/helpers/cluster.js";
import { connect, freePort } from "../test/helpers/redis-server.js";

const CLI = fileURLToPath(new URL("../services/cli/main.js", import.meta.url));

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const USERS = Number(option("users", "1000"));
const LOGIN_RATE = Number(option("login-rate", "200"));
const RATE = Number(option("rate", "2000"));
const DURATION = Number(option("duration", "20"));
const ROUNDS = Number(option("rounds", "2"));
const TARGETS = option("targets", "ejabberd,mesh,all-in-one").split(",");
const JSON_OUT = option("json", "");
/** Another checkout, built: targets named "<target>@before" run its CLI (a before/after run). */
const BASELINE = option("baseline", "");
const PASSWORD = "bench";

interface Target {
  url: string;
  pids: number[];
  /** Megaphone's Redis, whose commands per message are counted (INFO commandstats). */
  redisUrl?: string;
  stop(): Promise<void>;
}

function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
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

async function startEjabberd(): Promise<Target> {
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
  for (let from = 1; from <= USERS; from += 32) {
    await Promise.all(
      Array.from({ length: Math.min(32, USERS - from + 1) }, (_, i) =>
        fetch(`${api}/register`, {
          method: "POST",
          body: JSON.stringify({ user: `bench${from + i}`, host: "localhost", password: PASSWORD }),
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
  if (Number(limit?.[1]) < USERS + 100)
    throw new Error(`ejabberd may open ${limit?.[1]} files, too few for ${USERS} users: ulimit -n`);
  return {
    url: `ws://127.0.0.1:${port}/ws`,
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
  MEGAPHONE_INBOUND_BYTES_PER_SECOND: String(64 * 2 ** 20),
  MEGAPHONE_INBOUND_BURST_BYTES: String(64 * 2 ** 20),
};

/** The CLI a target runs: this build's, or the baseline's for "<target>@before". */
function cliOf(name: string): string {
  if (!name.endsWith("@before")) return CLI;
  if (!BASELINE) throw new Error(`target ${name} needs --baseline DIR (a built checkout)`);
  return join(BASELINE, "dist/services/cli/main.js");
}

async function startMesh(cli: string): Promise<Target> {
  const mesh = await Mesh.start({
    shardCount: 64,
    env: { ...MEGAPHONE_ENV, MEGAPHONE_SERVICE_CLI: cli },
  });
  const sessions = await Promise.all([mesh.session("s1", "0-31"), mesh.session("s2", "32-63")]);
  const edge = await mesh.edge("e1", "0-63");
  await run(
    [
      process.execPath,
      cli,
      "user",
      "import",
      "--range",
      "bench{n}@localhost",
      "--count",
      String(USERS),
      "--password",
      PASSWORD,
    ],
    { ...process.env, ...MEGAPHONE_ENV, MEGAPHONE_REDIS: mesh.redis.url },
  );
  const redisPid = "process" in mesh.redis ? mesh.redis.process.pid : undefined;
  return {
    url: edge.url,
    redisUrl: mesh.redis.url,
    pids: [edge.process.pid, ...sessions.map((s) => s.process.pid), redisPid].filter(
      (pid): pid is number => pid !== undefined,
    ),
    stop: () => mesh.stop(),
  };
}

async function startAllInOne(cli: string): Promise<Target> {
  const port = await freePort();
  const users = Array.from({ length: USERS }, (_, i) => [
    "--user",
    `bench${i + 1}@localhost:${PASSWORD}`,
  ]).flat();
  const service = spawnService(
    "all-in-one",
    ["start", "--port", String(port), "--host", "127.0.0.1", ...users],
    { ...MEGAPHONE_ENV, MEGAPHONE_SERVICE_CLI: cli },
  );
  await waitForHttp(`http://127.0.0.1:${port}/readyz`, service, 120000);
  return {
    url: `ws://127.0.0.1:${port}/xmpp-websocket`,
    pids: [service.process.pid!],
    stop: async () => {
      await service.stop("SIGKILL");
    },
  };
}

const STARTERS: Record<string, (cli: string) => Promise<Target>> = {
  ejabberd: startEjabberd,
  mesh: startMesh,
  "all-in-one": startAllInOne,
};

interface Measured {
  target: string;
  round: number;
  report: BenchReport;
  bytesPerSession: number;
  /** Redis commands over the whole run (logins included) per chat message delivered. */
  redisCommandsPerMsg: number;
}

/** Calls per command since Redis started (INFO commandstats). */
async function redisCalls(url: string | undefined): Promise<Map<string, number>> {
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

async function measure(name: string, round: number): Promise<Measured> {
  const start = STARTERS[name.replace(/@before$/, "")];
  if (!start) throw new Error(`unknown target ${name}`);
  const target = await start(cliOf(name));
  const json = join(tmpdir(), `side-by-side-${process.pid}-${name}-${round}.json`);
  try {
    const rssBefore = [
      ...sampleAll(target.pids.map((pid) => ({ pid, role: name }))).values(),
    ].reduce((a, s) => a + s.rssBytes, 0);
    const callsBefore = await redisCalls(target.redisUrl);
    await run([
      process.execPath,
      CLI,
      "bench",
      "chat",
      "--url",
      target.url,
      "--users",
      String(USERS),
      "--password",
      PASSWORD,
      "--login-rate",
      String(LOGIN_RATE),
      "--rate",
      String(RATE),
      "--duration",
      String(DURATION),
      // Spread over 16 source addresses, as real clients come from many: from one address the
      // logins would meet Megaphone's per-address upgrade rate (50/s) first.
      "--source-addresses",
      "127.0.0.1-127.0.0.16",
      "--pids",
      target.pids.join(","),
      "--json",
      json,
    ]).catch(() => {
      // Exit 1: a login failed or a message was lost; the table shows which.
    });
    const callsAfter = await redisCalls(target.redisUrl);
    const report = JSON.parse(readFileSync(json, "utf8")) as BenchReport;
    const login = report.phases[0];
    const rssAfterLogin = login.processes.reduce((a, p) => a + p.rssBytes, 0);
    const loggedIn = Number(login.figures["logged in"]);
    const delivered = Number(report.phases[1]?.figures.delivered ?? 0);
    const perMsg = [...callsAfter]
      .map(([command, n]) => [command, (n - (callsBefore.get(command) ?? 0)) / delivered] as const)
      .filter(([, n]) => n >= 0.01)
      .sort((a, b) => b[1] - a[1]);
    if (delivered > 0)
      process.stderr.write(
        `${name} round ${round}: Redis commands per msg: ${perMsg.map(([c, n]) => `${c} ${n.toFixed(2)}`).join(", ")}\n`,
      );
    const calls = perMsg.reduce((a, [, n]) => a + n, 0) * delivered;
    return {
      target: name,
      round,
      report,
      bytesPerSession: loggedIn > 0 ? (rssAfterLogin - rssBefore) / loggedIn : 0,
      redisCommandsPerMsg: delivered > 0 ? calls / delivered : 0,
    };
  } finally {
    rmSync(json, { force: true });
    await target.stop();
  }
}

const FIGURES: [string, (m: Measured) => number][] = [
  ["logins failed", (m) => Number(m.report.phases[0].figures.failed)],
  ["login p50 ms", (m) => Number(m.report.phases[0].figures["p50 ms"])],
  ["login p99 ms", (m) => Number(m.report.phases[0].figures["p99 ms"])],
  ["server CPU ms per login", (m) => Number(m.report.phases[0].figures["server CPU ms per login"])],
  ["RSS KiB per session (after login)", (m) => m.bytesPerSession / 1024],
  ["chat delivered msg/s", (m) => Number(m.report.phases[1]?.figures["delivered msg/s"] ?? 0)],
  ["chat lost", (m) => Number(m.report.phases[1]?.figures.lost ?? 0)],
  ["chat p50 ms", (m) => Number(m.report.phases[1]?.figures["p50 ms"] ?? 0)],
  ["chat p99 ms", (m) => Number(m.report.phases[1]?.figures["p99 ms"] ?? 0)],
  ["chat max ms", (m) => Number(m.report.phases[1]?.figures["max ms"] ?? 0)],
  [
    "server CPU ms per msg",
    (m) => Number(m.report.phases[1]?.figures["server CPU ms per msg"] ?? 0),
  ],
  ["Redis commands per msg (logins included)", (m) => m.redisCommandsPerMsg],
];

function fmt(n: number): string {
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toFixed(3);
}

async function main(): Promise<void> {
  const results: Measured[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 ? TARGETS : [...TARGETS].reverse();
    for (const name of order) {
      process.stderr.write(`round ${round}: ${name}…\n`);
      results.push(await measure(name, round));
    }
  }
  const reference = TARGETS[0];
  console.log(
    `\nbench:side-by-side: ${USERS} users, logins at ${LOGIN_RATE}/s, chat offered at ${RATE} msg/s for ${DURATION} s, ${ROUNDS} rounds (ratios against ${reference} of the same round)\n`,
  );
  const header = [
    "figure",
    ...TARGETS.flatMap((t) => (t === reference ? [t] : [t, `${t} ÷ ${reference}`])),
  ];
  console.log(`| ${header.join(" | ")} |\n| ${header.map(() => "---").join(" | ")} |`);
  for (const [label, read] of FIGURES) {
    const cells = [label];
    for (const t of TARGETS) {
      const values = results.filter((r) => r.target === t).map(read);
      cells.push(values.map(fmt).join(" / "));
      if (t !== reference) {
        const ratios = results
          .filter((r) => r.target === t)
          .map((r) => {
            const ref = results.find((x) => x.target === reference && x.round === r.round);
            return ref && read(ref) !== 0 ? read(r) / read(ref) : NaN;
          });
        cells.push(ratios.map(fmt).join(" / "));
      }
    }
    console.log(`| ${cells.join(" | ")} |`);
  }
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify(results, null, 2) + "\n");
}

const deadline = setTimeout(() => {
  console.error("bench:side-by-side did not finish within 30 minutes");
  process.exit(1);
}, 30 * 60000);
main().then(
  () => clearTimeout(deadline),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
