// bench:capacity — the capacity table of docs/capacity.md, measured with `megaphone bench` on
// this machine, each target started fresh (bench/targets.ts):
// - the highest login rate sustained (every login done, p99 within --login-p99-ms), with
//   SCRAM-SHA-256 (RFC 6120, and SASL2 + Bind 2), a FAST token and PLAIN, stepping through
//   --login-rates;
// - the highest chat rate sustained (nothing lost, every message delivered within the run,
//   p99 under --chat-p99-ms), stepping through --chat-rates;
// - memory per idle session at each --idle count, per tier (edge, session, Redis).
// The machine is shared and noisy: run it with nothing else busy, and compare targets of the
// same run (ratios), as bench:side-by-side does.
//
//   npm run bench:capacity -- [--targets all-in-one,mesh:1+1,mesh:2+2] [--baseline DIR]
//       [--logins scram,sasl2,fast,plain] [--login-rates 100,200,400,800]
//       [--chat-rates 1000,2000,4000,8000] [--chat-users 1000] [--idle 10000] [--json FILE]
//       [--idle-login-rate 500] [--idle-logins-in-flight 64] [--idle-login scram|sasl2|fast|plain]
//       [--idle-env NAME=VALUE,…] [--idle-settle S] [--before-redis-config NAME=VALUE,…]
//       [--returning-logins]
// With --returning-logins the login steps' users log in once first, not measured (bench
// --returning): the measured logins are returning clients' with their SCRAM SaltedPassword
// cached, so the figure is the server's and not the generator's PBKDF2.
// The idle steps ramp closed loop (at most --idle-logins-in-flight logins at once, arrivals at
// most --idle-login-rate/s: overload slows the ramp instead of timing logins out), their clients
// send whitespace keepalives (the edge's idle timeout would drop them), and their progress and
// bench report go to stderr as they run. With --idle-settle S, memory is sampled again S seconds
// after the first sample (`megaphone bench idle --settle`): once the services' V8 heaps have
// given back what the login burst left, the second figure is what the held sessions cost.
// The ladder toward a million (docs/capacity.md) holds only idle sessions, with more
// connections per edge than the default (MEGAPHONE_SCRAM_ITERATIONS cannot go below 4096):
//   npm run bench:capacity -- --targets mesh:8+2 --logins none --chat-rates none --idle 100000
//       --idle-env MEGAPHONE_MAX_CONNECTIONS=15000
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import type { PhaseReport } from "../services/bench/report.js";
import { sampleAll } from "../services/bench/proc-stats.js";
import { bench, option, startTarget } from "./targets.js";

/** A comma-separated option; "none" for an empty list. */
const list = (name: string, fallback: string) =>
  option(name, fallback)
    .split(",")
    .filter((item) => item !== "" && item !== "none");
const numbers = (name: string, fallback: string) => list(name, fallback).map(Number);

const TARGETS = option("targets", "all-in-one,mesh:1+1,mesh:2+2").split(",");
const BASELINE = option("baseline", "");
const LOGIN_RATES = numbers("login-rates", "100,200,400,800");
const LOGIN_SECONDS = Number(option("login-seconds", "5"));
const LOGIN_P99_MS = Number(option("login-p99-ms", "1000"));
const CHAT_RATES = numbers("chat-rates", "1000,2000,4000,8000");
const CHAT_USERS = Number(option("chat-users", "1000"));
const CHAT_SECONDS = Number(option("chat-seconds", "10"));
const CHAT_P99_MS = Number(option("chat-p99-ms", "50"));
const IDLE = numbers("idle", "10000");
const IDLE_LOGIN_RATE = option("idle-login-rate", "500");
/** The idle ramp's bound on logins in flight, all workers together; 0 for open loop. */
const IDLE_LOGINS_IN_FLIGHT = option("idle-logins-in-flight", "64");
/** Settings for the idle targets only, e.g. MEGAPHONE_MAX_CONNECTIONS=15000. */
const IDLE_ENV = Object.fromEntries(
  list("idle-env", "").map((pair) => {
    const at = pair.indexOf("=");
    if (at <= 0) throw new Error(`--idle-env wants NAME=VALUE pairs, not "${pair}"`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  }),
);
/**
 * redis-server settings for the "@before" targets, e.g. Redis's own hash-max-listpack-entries=512,
 * hash-max-listpack-value=64 for a baseline older than this build's listpack settings.
 */
const BEFORE_REDIS_CONFIG = list("before-redis-config", "");
for (const pair of BEFORE_REDIS_CONFIG)
  if (pair.indexOf("=") <= 0)
    throw new Error(`--before-redis-config wants NAME=VALUE pairs, not "${pair}"`);
/** Seconds between the idle steps' first memory sample and a second one; 0: none. */
const IDLE_SETTLE = Number(option("idle-settle", "0"));
const JSON_OUT = option("json", "");
/**
 * --returning-logins: the login steps' clients log in once first (bench --returning), so each
 * measured SCRAM login costs the generator no key derivation: the figure is the server's.
 */
const RETURNING_LOGINS = process.argv.includes("--returning-logins");
const PASSWORD = "bench";

/** How clients log in, one column each (--logins picks them by key). */
const LOGIN_KINDS = [
  { key: "scram", label: "SCRAM-SHA-256", args: ["--mechanism", "SCRAM-SHA-256"] },
  {
    key: "sasl2",
    label: "SCRAM-SHA-256 by SASL2 + Bind 2",
    args: ["--mechanism", "SCRAM-SHA-256", "--login", "sasl2"],
  },
  { key: "fast", label: "FAST token", args: ["--login", "fast"] },
  { key: "plain", label: "PLAIN", args: ["--mechanism", "PLAIN"] },
];
const RATE_LOGIN_KINDS = LOGIN_KINDS.filter((kind) =>
  list("logins", "scram,sasl2,fast,plain").includes(kind.key),
);
/** How the idle steps' clients log in (a key of LOGIN_KINDS). */
const IDLE_LOGIN = (() => {
  const key = option("idle-login", "scram");
  const kind = LOGIN_KINDS.find((k) => k.key === key);
  if (!kind)
    throw new Error(`--idle-login wants one of ${LOGIN_KINDS.map((k) => k.key).join(", ")}`);
  return kind;
})();

interface Step {
  rate: number;
  passed: boolean;
  figures: PhaseReport["figures"];
  /**
   * Login steps: server CPU ms per login by process role (edge, session, redis, …): in a
   * mesh the session and edge tiers scale out, Redis does not.
   */
  cpuMsByRole?: Record<string, number>;
}

/** CPU ms per login by process role, over the phase's processes. */
function cpuMsByRole(phase: PhaseReport): Record<string, number> {
  const loggedIn = figure(phase, "logged in");
  const byRole: Record<string, number> = {};
  for (const p of phase.processes)
    byRole[p.role] = (byRole[p.role] ?? 0) + (loggedIn > 0 ? (p.cpuSeconds * 1000) / loggedIn : 0);
  return byRole;
}

/** Growth of resident memory per held session, in bytes: in all and by process role. */
interface IdleMemory {
  sessions: number;
  bytesPerSession: Record<string, number>;
  total: number;
}

interface TargetResult {
  target: string;
  logins: Record<string, Step[]>;
  chat: Step[];
  /** `settled`: the second sample (--idle-settle). */
  idle: (IdleMemory & { settled?: IdleMemory })[];
}

const figure = (phase: PhaseReport | undefined, name: string) => Number(phase?.figures[name] ?? 0);

/** The login and chat steps, on one target started for them. */
async function measureRates(name: string, result: TargetResult): Promise<void> {
  const users = Math.max(CHAT_USERS, ...LOGIN_RATES.map((rate) => rate * LOGIN_SECONDS));
  const target = await startTarget(name, {
    users,
    password: PASSWORD,
    baseline: BASELINE,
    beforeRedisConfig: BEFORE_REDIS_CONFIG,
  });
  try {
    for (const kind of RATE_LOGIN_KINDS) {
      const steps: Step[] = (result.logins[kind.label] = []);
      for (const rate of LOGIN_RATES) {
        const count = rate * LOGIN_SECONDS;
        process.stderr.write(`${name}: ${kind.label} logins at ${rate}/s…\n`);
        const login = (
          await bench(target, PASSWORD, [
            "bench",
            "login",
            "--users",
            String(count),
            ...kind.args,
            "--login-rate",
            String(rate),
            ...(RETURNING_LOGINS ? ["--returning"] : []),
          ])
        ).phases[0];
        const passed =
          figure(login, "failed") === 0 &&
          figure(login, "logged in") === count &&
          figure(login, "achieved /s") >= 0.95 * rate &&
          figure(login, "p99 ms") <= LOGIN_P99_MS;
        steps.push({ rate, passed, figures: login.figures, cpuMsByRole: cpuMsByRole(login) });
        if (!passed) break;
      }
    }
    for (const rate of CHAT_RATES) {
      process.stderr.write(`${name}: chat at ${rate} msg/s…\n`);
      const chat = (
        await bench(target, PASSWORD, [
          "bench",
          "chat",
          "--users",
          String(CHAT_USERS),
          "--rate",
          String(rate),
          "--duration",
          String(CHAT_SECONDS),
        ])
      ).phases[1];
      const passed =
        chat !== undefined &&
        figure(chat, "lost") === 0 &&
        figure(chat, "duplicates") === 0 &&
        figure(chat, "delivered msg/s") >= 0.99 * rate &&
        figure(chat, "p99 ms") < CHAT_P99_MS;
      result.chat.push({ rate, passed, figures: chat?.figures ?? {} });
      if (!passed) break;
    }
  } finally {
    await target.stop();
  }
}

async function measureTarget(name: string): Promise<TargetResult> {
  const result: TargetResult = { target: name, logins: {}, chat: [], idle: [] };
  if (RATE_LOGIN_KINDS.length > 0 || CHAT_RATES.length > 0) await measureRates(name, result);
  for (const sessions of IDLE) {
    // Fresh, so that nothing the rates above left behind (garbage, buffers) counts.
    const idleTarget = await startTarget(name, {
      users: sessions,
      password: PASSWORD,
      baseline: BASELINE,
      env: IDLE_ENV,
      beforeRedisConfig: BEFORE_REDIS_CONFIG,
      // Memory per session does not depend on salts; 100,000 derivations would delay the step.
      sharedSalt: true,
    });
    try {
      process.stderr.write(`${name}: ${sessions} idle sessions…\n`);
      const before = sampleAll(idleTarget.pids.map((pid) => ({ pid, role: String(pid) })));
      const report = await bench(
        idleTarget,
        PASSWORD,
        [
          "bench",
          "idle",
          "--users",
          String(sessions),
          ...IDLE_LOGIN.args,
          "--login-rate",
          IDLE_LOGIN_RATE,
          "--logins-in-flight",
          IDLE_LOGINS_IN_FLIGHT,
          "--hold",
          "5",
          "--settle",
          String(IDLE_SETTLE),
          "--deadline",
          "3000",
        ],
        true,
      );
      const idle = report.phases.find((p) => p.phase === "idle");
      const held = Number(idle?.figures.sessions ?? 0);
      const login = report.phases.find((p) => p.phase === "login")?.figures;
      if (held < sessions)
        process.stderr.write(
          `${name}: ${held} of ${sessions} held; login failures: ${String(login?.errors ?? "?")}; ` +
            `dropped after login: ${String(idle?.figures["dropped by kind"] ?? "?")}\n`,
        );
      const settled = report.phases.find((p) => p.phase === "settled");
      result.idle.push({
        ...idleMemory(idle, before),
        ...(settled ? { settled: idleMemory(settled, before) } : {}),
      });
    } finally {
      await idleTarget.stop();
    }
  }
  return result;
}

/** RSS growth since `before` per session still held in `phase`, by process role. */
function idleMemory(
  phase: PhaseReport | undefined,
  before: Map<number, { rssBytes: number }>,
): IdleMemory {
  const held = Number(phase?.figures.sessions ?? 0);
  const bytesPerSession: Record<string, number> = {};
  let total = 0;
  for (const p of phase?.processes ?? []) {
    const grown = p.rssBytes - (before.get(p.pid)?.rssBytes ?? 0);
    bytesPerSession[p.role] = (bytesPerSession[p.role] ?? 0) + (held ? grown / held : 0);
    total += held ? grown / held : 0;
  }
  return { sessions: held, bytesPerSession, total };
}

function best(steps: Step[]): Step | undefined {
  return steps.filter((s) => s.passed).at(-1);
}

function cell(step: Step | undefined, p99Name = "p99 ms", cpuName?: string): string {
  if (!step) return "below the lowest step";
  const byRole = Object.entries(step.cpuMsByRole ?? {});
  const roles =
    byRole.length > 1
      ? `: ${byRole.map(([role, ms]) => `${role} ${ms.toFixed(2)}`).join(", ")}`
      : "";
  const cpu = cpuName ? `, ${Number(step.figures[cpuName]).toFixed(2)} ms CPU${roles}` : "";
  return `${step.rate}/s (p99 ${Number(step.figures[p99Name]).toFixed(1)} ms${cpu})`;
}

function idleCell(memory: IdleMemory, wanted: number): string {
  return (
    (memory.sessions === wanted ? "" : `only ${memory.sessions} held: `) +
    `${(memory.total / 1024).toFixed(1)}; ` +
    Object.entries(memory.bytesPerSession)
      .map(([role, b]) => `${role} ${(b / 1024).toFixed(1)}`)
      .join(", ")
  );
}

function formatTable(results: TargetResult[]): string {
  const header = [
    "target",
    ...RATE_LOGIN_KINDS.map((k) => `${k.label} logins/s`),
    ...(CHAT_RATES.length > 0 ? [`chat msg/s (p99 < ${CHAT_P99_MS} ms)`] : []),
    ...IDLE.flatMap((n) => [
      `KiB per idle session at ${n} (total; per tier)`,
      ...(IDLE_SETTLE > 0 ? [`the same ${IDLE_SETTLE} s later`] : []),
    ]),
  ];
  const rows = [`| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`];
  for (const r of results) {
    const idle = r.idle.flatMap((i, n) => [
      idleCell(i, IDLE[n]),
      ...(IDLE_SETTLE > 0 ? [i.settled ? idleCell(i.settled, IDLE[n]) : "not sampled"] : []),
    ]);
    const cells = [
      r.target,
      ...RATE_LOGIN_KINDS.map((k) =>
        cell(best(r.logins[k.label]), "p99 ms", "server CPU ms per login"),
      ),
      ...(CHAT_RATES.length > 0 ? [cell(best(r.chat), "p99 ms", "server CPU ms per msg")] : []),
      ...idle,
    ];
    rows.push(`| ${cells.join(" | ")} |`);
  }
  return rows.join("\n");
}

async function main(): Promise<void> {
  const results: TargetResult[] = [];
  for (const name of TARGETS) results.push(await measureTarget(name));
  console.log(
    `\nbench:capacity on ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), node ${process.version}; ` +
      `logins ${LOGIN_SECONDS} s per step (p99 ≤ ${LOGIN_P99_MS} ms), chat ${CHAT_USERS} users ${CHAT_SECONDS} s per step\n`,
  );
  console.log(formatTable(results));
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify(results, null, 2) + "\n");
}

const deadline = setTimeout(() => {
  console.error("bench:capacity did not finish within 60 minutes");
  process.exit(1);
}, 60 * 60000);
main().then(
  () => clearTimeout(deadline),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
