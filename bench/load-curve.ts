// bench:load-curve — what each target's servers spend on chat as the offered rate grows: the
// same `megaphone bench chat` load (1,000 users by default) at each of several rates, against
// each target (bench/targets.ts: ejabberd, mesh, mesh:E+S, all-in-one), reporting the cores the
// servers used and their CPU per message, in all and by tier.
//
// CPU per message is not one number per target: a server that batches spends less per message
// the busier it is (bigger batches, fewer wake-ups per message), so a comparison at one rate
// says little about another. This prints the curve.
//
//   npm run bench:load-curve -- [--targets ejabberd,mesh,all-in-one] [--rates 500,1000,2000,4000]
//       [--users 1000] [--duration 15] [--rounds 1] [--baseline DIR] [--json FILE] [--sm]
//
// --sm: the clients enable XEP-0198 stream management, as most real clients do (bench --sm).
//
// Each target is started once per round and serves every rate in turn (each rate's clients log
// in afresh); the targets' order alternates between rounds. Needs ejabberd (apt-get install
// ejabberd) and root for the ejabberd target.
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import type { PhaseReport } from "../services/bench/report.js";
import { bench, fmt, option, startTarget } from "./targets.js";

const TARGETS = option("targets", "ejabberd,mesh,all-in-one").split(",");
const RATES = option("rates", "500,1000,2000,4000").split(",").map(Number);
const USERS = Number(option("users", "1000"));
const DURATION = Number(option("duration", "15"));
const ROUNDS = Number(option("rounds", "1"));
const BASELINE = option("baseline", "");
const JSON_OUT = option("json", "");
const STREAM_MANAGEMENT = process.argv.includes("--sm");
const PASSWORD = "bench";

if (RATES.some((r) => !Number.isInteger(r) || r <= 0))
  throw new Error("--rates wants positive integers, comma-separated");

interface Point {
  target: string;
  round: number;
  rate: number;
  delivered: number;
  deliveredPerSecond: number;
  lost: number;
  p50: number;
  p99: number;
  /** Cores the target's processes used during the chat phase, by role and in all. */
  cores: Record<string, number>;
  /** Their CPU ms per delivered message, by role and in all. */
  cpuMsPerMsg: Record<string, number>;
  /**
   * Their main threads' wake-ups per delivered message, by role and in all. Not ejabberd's:
   * its schedulers are threads of their own, so its main thread's count says nothing (–).
   */
  wakeupsPerMsg: Record<string, number>;
  /** Wake-ups of all their threads per delivered message, by role and in all (ejabberd's too). */
  threadWakeupsPerMsg: Record<string, number>;
  /** Whether the clients enabled XEP-0198 (--sm). */
  streamManagement: boolean;
  /** XEP-0198 ack requests the clients answered, per delivered message (--sm). */
  acksPerMsg: number;
}

const figure = (phase: PhaseReport | undefined, name: string) => Number(phase?.figures[name] ?? 0);

async function chatAt(target: string, round: number): Promise<Point[]> {
  const started = await startTarget(target, {
    users: USERS,
    password: PASSWORD,
    baseline: BASELINE,
  });
  const points: Point[] = [];
  try {
    for (const rate of RATES) {
      process.stderr.write(`round ${round}: ${target} at ${rate} msg/s…\n`);
      const report = await bench(
        started,
        PASSWORD,
        [
          "bench",
          "chat",
          "--users",
          String(USERS),
          "--rate",
          String(rate),
          "--duration",
          String(DURATION),
          ...(STREAM_MANAGEMENT ? ["--sm"] : []),
        ],
        false,
        "127.0.0.1-127.0.0.16",
      );
      const chat = report.phases[1];
      const delivered = figure(chat, "delivered");
      const cores: Record<string, number> = { all: 0 };
      const cpuMsPerMsg: Record<string, number> = { all: 0 };
      const wakeupsPerMsg: Record<string, number> = { all: 0 };
      const threadWakeupsPerMsg: Record<string, number> = { all: 0 };
      const perMsg = (count: number) => (delivered > 0 ? count / delivered : 0);
      /** Adds a process's figure to its role's and to the total. */
      const add = (figures: Record<string, number>, role: string, value: number) => {
        figures[role] = (figures[role] ?? 0) + value;
        figures.all += value;
      };
      for (const p of chat?.processes ?? []) {
        add(cores, p.role, p.cores);
        add(cpuMsPerMsg, p.role, perMsg(p.cpuSeconds * 1000));
        add(wakeupsPerMsg, p.role, perMsg(p.wakeups));
        add(threadWakeupsPerMsg, p.role, perMsg(p.threadWakeups));
      }
      points.push({
        target,
        round,
        rate,
        delivered,
        deliveredPerSecond: figure(chat, "delivered msg/s"),
        lost: figure(chat, "lost"),
        p50: figure(chat, "p50 ms"),
        p99: figure(chat, "p99 ms"),
        cores,
        cpuMsPerMsg,
        wakeupsPerMsg,
        threadWakeupsPerMsg,
        streamManagement: STREAM_MANAGEMENT,
        acksPerMsg: perMsg(figure(chat, "XEP-0198 acks answered")),
      });
    }
  } finally {
    await started.stop();
  }
  return points;
}

async function main(): Promise<void> {
  const points: Point[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 ? TARGETS : [...TARGETS].reverse();
    for (const target of order) points.push(...(await chatAt(target, round)));
  }
  const roles = [...new Set(points.flatMap((p) => Object.keys(p.cpuMsPerMsg)))].filter(
    (r) => r !== "all",
  );
  console.log(
    `\nbench:load-curve on ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), node ${process.version}: ${USERS} users${STREAM_MANAGEMENT ? " with XEP-0198" : ""}, ${DURATION} s of chat per rate; servers' CPU from /proc (the load generator's own is not counted)\n`,
  );
  console.log(
    `| target | round | offered msg/s | delivered msg/s | lost | p50 ms | p99 ms | server cores | CPU ms per msg | ${roles.map((r) => `${r} ms/msg`).join(" | ")} | wake-ups per msg, main threads | all threads |${STREAM_MANAGEMENT ? " XEP-0198 acks per msg |" : ""}`,
  );
  console.log(`|${" --- |".repeat(11 + roles.length + (STREAM_MANAGEMENT ? 1 : 0))}`);
  for (const p of [...points].sort(
    (a, b) =>
      TARGETS.indexOf(a.target) - TARGETS.indexOf(b.target) || a.rate - b.rate || a.round - b.round,
  ))
    console.log(
      `| ${p.target} | ${p.round} | ${p.rate} | ${fmt(p.deliveredPerSecond)} | ${p.lost} | ${fmt(p.p50)} | ${fmt(p.p99)} | ${fmt(p.cores.all)} | ${fmt(p.cpuMsPerMsg.all)} | ${roles.map((r) => (r in p.cpuMsPerMsg ? fmt(p.cpuMsPerMsg[r]) : "")).join(" | ")} | ${"ejabberd" in p.wakeupsPerMsg ? "–" : fmt(p.wakeupsPerMsg.all)} | ${fmt(p.threadWakeupsPerMsg.all)} |${STREAM_MANAGEMENT ? ` ${fmt(p.acksPerMsg)} |` : ""}`,
    );
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify(points, null, 2));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
