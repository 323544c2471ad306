// bench:side-by-side — the same `megaphone bench chat` load against ejabberd (the reference, from
// Debian's package) and Megaphone (a mesh: Redis, one edge, two sessions, or "mesh:E+S"; and
// the all-in-one; bench/targets.ts),
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
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchReport } from "../services/bench/report.js";
import { sampleAll } from "../services/bench/proc-stats.js";
import { CLI, fmt, option, redisCalls, run, startTarget } from "./targets.js";

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

interface Measured {
  target: string;
  round: number;
  report: BenchReport;
  bytesPerSession: number;
  /** Redis commands over the whole run (logins included) per chat message delivered. */
  redisCommandsPerMsg: number;
}

async function measure(name: string, round: number): Promise<Measured> {
  const target = await startTarget(name, { users: USERS, password: PASSWORD, baseline: BASELINE });
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
