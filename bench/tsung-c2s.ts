// bench:tsung — a load check over TCP c2s with a load generator no one here wrote: Debian's
// tsung (jabber plugin) against each target, started fresh (bench/targets.ts) with a c2s port
// on loopback and accounts bench1 … benchN with tsung's passwords. By default the port is
// plaintext (the edges run with --c2s-require-tls false, loopback benchmarks only); with
// --starttls it requires STARTTLS (a self-signed certificate for localhost, which tsung does
// not verify) and tsung upgrades each connection. Prints tsung's figures per target as a
// Markdown table (docs/capacity.md, "tsung over TCP c2s"). Not part of npm test. Bounded: 200
// users chatting for 50 s by default (about 70 s a target).
//
//   npm run bench:tsung -- [--targets all-in-one,mesh] [--users 200] [--arrival-rate 40]
//       [--chat-seconds 50] [--think-seconds 1] [--message-bytes 64] [--starttls]
//       [--bosh]   (XMPP over BOSH at the edges' /http-bind instead of TCP c2s)
//       [--dump]   (tsung dumps its traffic; messages received are counted in it)
//       [--json FILE] [--keep]
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sampleProcess } from "../services/bench/proc-stats.js";
import { makeCert, type TestCert } from "../test/helpers/tls-cert.js";
import { option, run, startTarget, type Target } from "./targets.js";
import { messagesPerUser, tsungConfig, type TsungScenario } from "./tsung/tsung-config.js";
import { readTsungLog, stampsReceived, tsungErrors, type TsungStats } from "./tsung/tsung-log.js";

const TARGETS = option("targets", "all-in-one,mesh").split(",");
const JSON_OUT = option("json", "");
const KEEP = process.argv.includes("--keep");
const SCENARIO = {
  users: Number(option("users", "200")),
  arrivalRate: Number(option("arrival-rate", "40")),
  chatSeconds: Number(option("chat-seconds", "50")),
  thinkSeconds: Number(option("think-seconds", "1")),
  messageBytes: Number(option("message-bytes", "64")),
  dumpTraffic: process.argv.includes("--dump"),
  starttls: process.argv.includes("--starttls"),
  bosh: process.argv.includes("--bosh"),
};

interface TargetRun {
  target: string;
  /** Server CPU seconds (every process of the target) while tsung ran. */
  serverCpuSeconds: number;
  messagesPlanned: number;
  stats: TsungStats;
  /** Stamped messages received, counted in tsung's traffic dump (with --dump). */
  receivedInDump?: number;
}

function tsungVersion(): string {
  const out = execFileSync("dpkg-query", ["-W", "-f", "${Version}", "tsung"], { encoding: "utf8" });
  return out.trim();
}

function cpuSeconds(target: Target): number {
  return target.pids.reduce((sum, pid) => sum + (sampleProcess(pid)?.cpuSeconds ?? 0), 0);
}

/** Runs tsung once against `target`'s c2s ports; returns its statistics. */
async function runTsung(
  scenario: TsungScenario,
  dir: string,
): Promise<{ stats: TsungStats; receivedInDump?: number }> {
  const config = join(dir, "tsung.xml");
  writeFileSync(config, tsungConfig(scenario));
  const logs = join(dir, "log");
  // Its own HOME: tsung creates ~/.tsung. -n: no web GUI (port 8091, shared machine).
  await run(["tsung", "-n", "-f", config, "-l", logs, "start"], { ...process.env, HOME: dir });
  const runDir = join(logs, readdirSync(logs)[0]);
  const stats = readTsungLog(readFileSync(join(runDir, "tsung.log"), "utf8"));
  if (!scenario.dumpTraffic) return { stats };
  return {
    stats,
    receivedInDump: stampsReceived(readFileSync(join(runDir, "tsung.dump"), "utf8")),
  };
}

async function measure(name: string, cert: TestCert | undefined): Promise<TargetRun> {
  const target = await startTarget(name, {
    users: SCENARIO.users,
    password: "bench",
    numberedPasswords: true,
    c2s: cert ? { certFile: cert.certFile, keyFile: cert.keyFile } : {},
  });
  const dir = mkdtempSync(join(tmpdir(), "megaphone-tsung-"));
  try {
    // BOSH: the edges' HTTP ports, from their WebSocket URLs.
    const httpPorts = target.url.split(",").map((url) => Number(new URL(url).port));
    const scenario = { ...SCENARIO, ports: SCENARIO.bosh ? httpPorts : target.c2sPorts };
    const cpuBefore = cpuSeconds(target);
    const { stats, receivedInDump } = await runTsung(scenario, dir);
    return {
      target: name,
      serverCpuSeconds: cpuSeconds(target) - cpuBefore,
      messagesPlanned: SCENARIO.users * messagesPerUser(scenario),
      stats,
      receivedInDump,
    };
  } finally {
    await target.stop();
    if (KEEP) console.error(`${name}: tsung's config and logs kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

const ms = (value: number | undefined) => (value === undefined ? "–" : value.toFixed(1));

function row(run: TargetRun): string {
  const { target, serverCpuSeconds, messagesPlanned, stats, receivedInDump } = run;
  const sample = (name: string) => stats.samples.get(name);
  const errors = [...tsungErrors(stats)].map(([name, n]) => `${name} ${n}`).join(", ");
  const delivered = sample("xmpp_msg_latency");
  const sent = sample("tr_chat")?.count ?? 0;
  return [
    target,
    `${stats.totals.get("users_count") ?? 0} / ${stats.totals.get("finish_users_count") ?? 0}`,
    String(stats.peaks.get("connected") ?? 0),
    `${sample("tr_login")?.count ?? 0} (${stats.totals.get("match") ?? 0} refused)`,
    [sample("connect"), sample("xmpp_starttls"), sample("tr_login"), sample("tr_roster")]
      .map((t) => ms(t?.mean))
      .join(" / "),
    `${sent} of ${messagesPlanned}`,
    receivedInDump === undefined ? "–" : String(receivedInDump),
    String(delivered?.count ?? 0),
    `${ms(delivered?.mean)} / ${ms(delivered?.max)}`,
    ms(sample("request")?.mean),
    errors || "none",
    sent ? ((serverCpuSeconds * 1000) / sent).toFixed(2) : "–",
  ].join(" | ");
}

async function main(): Promise<void> {
  const runs: TargetRun[] = [];
  const certDir = mkdtempSync(join(tmpdir(), "megaphone-tsung-tls-"));
  try {
    const cert = SCENARIO.starttls ? makeCert(["localhost"], certDir) : undefined;
    for (const name of TARGETS) {
      console.error(`${name}: tsung with ${SCENARIO.users} users …`);
      runs.push(await measure(name, cert));
    }
  } finally {
    rmSync(certDir, { recursive: true, force: true });
  }
  const { users, arrivalRate, chatSeconds, thinkSeconds, messageBytes, starttls } = SCENARIO;
  console.log(
    `tsung ${tsungVersion()} over ${SCENARIO.bosh ? "BOSH (/http-bind)" : `${starttls ? "STARTTLS" : "plaintext"} c2s`}, ` +
      `${users} users arriving at ${arrivalRate}/s, each sending a ` +
      `${messageBytes}-byte message every ${thinkSeconds} s for ${chatSeconds} s, ` +
      `${new Date().toISOString()}\n`,
  );
  console.log(
    "| target | users started / finished | most connected (10 s dumps) | login attempts (refused) | connect / STARTTLS / login / roster mean ms | messages sent | received (dump) | delivery samples | delivery mean / max ms | request mean ms | tsung errors | server CPU ms per message |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of runs) console.log(`| ${row(r)} |`);
  // A refused login or an error tsung counted fails the run (the table still shows it).
  const failed = runs.filter(
    (r) => (r.stats.totals.get("match") ?? 0) > 0 || tsungErrors(r.stats).size > 0,
  );
  if (failed.length > 0) {
    console.error(`refused logins or tsung errors: ${failed.map((r) => r.target).join(", ")}`);
    process.exitCode = 1;
  }
  if (JSON_OUT) {
    const plain = runs.map((r) => ({
      ...r,
      stats: {
        samples: Object.fromEntries(r.stats.samples),
        totals: Object.fromEntries(r.stats.totals),
        peaks: Object.fromEntries(r.stats.peaks),
      },
    }));
    writeFileSync(JSON_OUT, JSON.stringify({ scenario: SCENARIO, runs: plain }, null, 2));
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
