// `megaphone bench`: the coordinator. Forks the worker processes, runs the scenario's phases
// in step across them (log in everyone, then chat, or hold), samples the server processes'
// CPU and memory from /proc around each measured phase, and prints the table (and JSON).
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { BENCH_USAGE, parseBenchArgs, type BenchOptions } from "./bench-options.js";
export { BENCH_USAGE };
import { LatencyHistogram, monotonicMicros } from "./histogram.js";
import {
  describeProcesses,
  discoverProcesses,
  sampleAll,
  usageBetween,
  type WatchedProcess,
} from "./proc-stats.js";
import type { ChatResult, FromWorker, HeldResult, LoginResult, ToWorker } from "./protocol.js";
import { formatReport, type BenchReport, type PhaseReport } from "./report.js";

const WORKER = fileURLToPath(new URL("./worker.js", import.meta.url));

class WorkerHandle {
  progress = { loggedIn: 0, failed: 0, held: 0, inFlight: 0, sent: 0, received: 0 };
  private waiting = new Map<string, (message: FromWorker) => void>();
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    child.on("message", (message: FromWorker) => {
      if (message.type === "progress") this.progress = message;
      else if (message.type === "error") this.fail(new Error(`bench worker: ${message.message}`));
      else this.waiting.get(message.type)?.(message);
    });
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    child.once("exit", (code) => this.fail(new Error(`bench worker exited (${code})`)));
  }

  private failures: ((err: Error) => void)[] = [];

  private fail(err: Error): void {
    for (const reject of this.failures) reject(err);
  }

  request<T extends FromWorker["type"]>(
    message: ToWorker,
    reply: T,
  ): Promise<Extract<FromWorker, { type: T }>> {
    return new Promise((resolve, reject) => {
      this.failures.push(reject);
      this.waiting.set(reply, (m) => {
        this.waiting.delete(reply);
        resolve(m as Extract<FromWorker, { type: T }>);
      });
      this.child.send(message);
    });
  }
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function mergeErrors(all: Record<string, number>[]): string {
  const merged: Record<string, number> = {};
  for (const errors of all)
    for (const [k, v] of Object.entries(errors)) merged[k] = (merged[k] ?? 0) + v;
  const text = Object.entries(merged)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return text || "none";
}

/** Server CPU and memory across a phase. */
class ProcWindow {
  private readonly before: ReturnType<typeof sampleAll>;
  private readonly started = monotonicMicros();
  constructor(private readonly processes: WatchedProcess[]) {
    this.before = sampleAll(processes);
  }

  end() {
    const seconds = (monotonicMicros() - this.started) / 1e6;
    const usage = usageBetween(this.processes, this.before, sampleAll(this.processes), seconds);
    return {
      usage,
      cpuSeconds: sum(usage.map((u) => u.cpuSeconds)),
      rssBytes: sum(usage.map((u) => u.rssBytes)),
    };
  }
}

function latencyFigures(h: LatencyHistogram): Record<string, number> {
  return {
    "p50 ms": h.percentileMs(50),
    "p90 ms": h.percentileMs(90),
    "p99 ms": h.percentileMs(99),
    "max ms": h.maxMs,
  };
}

/** The soft limit on open files of this process (the workers inherit it), from /proc. */
function openFilesLimit(): number {
  try {
    const limits = readFileSync("/proc/self/limits", "utf8");
    const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
    return soft === undefined || soft === "unlimited" ? Infinity : Number(soft);
  } catch {
    return Infinity;
  }
}

export async function runBench(argv: string[]): Promise<number> {
  const options = parseBenchArgs(argv);
  const perWorker = Math.ceil(options.users / options.workers);
  const limit = openFilesLimit();
  // Each client is a socket: past the limit, connects fail with EMFILE and look like a server
  // refusing them.
  if (perWorker + 64 > limit)
    console.error(
      `bench: ${perWorker} clients per worker but only ${limit} open files allowed: raise it (ulimit -n 20000) or add --workers`,
    );
  const processes: WatchedProcess[] =
    options.pids.length > 0 ? describeProcesses(options.pids) : discoverProcesses();
  const workers = startWorkers(options);
  const deadline = setTimeout(() => {
    console.error(`bench: the run took longer than ${options.deadlineMs / 1000} s; stopping`);
    for (const w of workers) w.child.kill("SIGKILL");
    process.exit(1);
  }, options.deadlineMs);
  const started = Date.now();
  const progress = setInterval(() => printProgress(workers, started), 1000);
  const phases: PhaseReport[] = [];
  try {
    if (options.login === "fast" || options.returning) await loginFirst(options, workers);
    const memoryBefore = new ProcWindow(processes).end().rssBytes;
    const loginWindow = new ProcWindow(processes);
    const logins = await Promise.all(
      workers.map((w, i) => w.request({ type: "login", task: taskFor(options, i) }, "login-done")),
    );
    const login = loginReport(
      options,
      logins.map((l) => l.result),
      loginWindow.end(),
    );
    phases.push(login);
    if (options.scenario === "chat" || options.scenario === "presence")
      phases.push(await loadPhase(options, options.scenario, workers, processes));
    if (options.scenario === "idle") {
      await new Promise((r) => setTimeout(r, options.holdMs));
      phases.push(await idlePhase("idle", workers, processes, login, memoryBefore));
      if (options.settleMs > 0) {
        await new Promise((r) => setTimeout(r, options.settleMs));
        phases.push(await idlePhase("settled", workers, processes, login, memoryBefore));
      }
    }
  } finally {
    clearInterval(progress);
    for (const w of workers)
      if (w.child.connected) w.child.send({ type: "stop" } satisfies ToWorker);
    await Promise.all(workers.map((w) => w.exited));
    clearTimeout(deadline);
  }
  const report: BenchReport = {
    scenario: options.scenario,
    settings: { ...options, password: "…" },
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? "unknown", node: process.version },
    phases,
  };
  process.stderr.write("\n");
  console.log(formatReport(report));
  if (options.json) writeFileSync(options.json, JSON.stringify(report, null, 2) + "\n");
  const failed = phases.some(
    (p) =>
      Number(p.figures.failed ?? 0) > 0 ||
      Number(p.figures.lost ?? 0) > 0 ||
      Number(p.figures.dropped ?? 0) > 0 ||
      Number(p.figures.duplicates ?? 0) > 0,
  );
  return failed ? 1 : 0;
}

/**
 * The held sessions' memory now: RSS of the server processes, and their growth since before
 * the logins per session still connected (a client the server dropped since, by its idle
 * timeout say, holds no memory and must not dilute the figure).
 */
async function idlePhase(
  phase: "idle" | "settled",
  workers: WorkerHandle[],
  processes: WatchedProcess[],
  login: PhaseReport,
  memoryBefore: number,
): Promise<PhaseReport> {
  const memory = new ProcWindow(processes).end();
  const held = (await Promise.all(workers.map((w) => w.request({ type: "held" }, "held")))).map(
    (m) => m.result,
  );
  const sessions = sum(held.map((h) => h.held));
  return {
    phase,
    figures: {
      sessions,
      "logged in": Number(login.figures["logged in"]),
      dropped: sum(held.map((h) => sum(Object.values(h.dropped)))),
      "dropped by kind": mergeErrors(held.map((h: HeldResult) => h.dropped)),
      "server pings answered": sum(held.map((h) => h.pingsAnswered)),
      "server RSS MiB": memory.rssBytes / 2 ** 20,
      "bytes per session": sessions > 0 ? (memory.rssBytes - memoryBefore) / sessions : 0,
    },
    processes: memory.usage,
  };
}

/** The unmeasured first logins' bound on logins in flight, all workers together. */
const LOGIN_FIRST_IN_FLIGHT = 64;

/**
 * Every user logs in once first, not measured: --login fast, for a token (a user without one
 * fails); --returning, so that the measured logins are those of returning clients.
 */
async function loginFirst(options: BenchOptions, workers: WorkerHandle[]): Promise<void> {
  const requestToken = options.login === "fast";
  const results = await Promise.all(
    workers.map((w, i) => {
      // Closed loop: at the measured step's open-loop rate an overloaded server would fail
      // some of these unmeasured logins, and their users would then fail the measured step
      // for a reason outside it (a FAST login without a token).
      const maxLoginsInFlight = Math.max(1, Math.round(LOGIN_FIRST_IN_FLIGHT / workers.length));
      const task = { ...taskFor(options, i), maxLoginsInFlight };
      return w.request({ type: "login-first", task, requestToken }, "login-first-done");
    }),
  );
  const got = sum(results.map((r) => r.result.succeeded));
  const inFlight = sum(results.map((r) => r.result.mostInFlight));
  process.stderr.write(
    `bench: ${requestToken ? "FAST tokens for" : "logged in first"} ${got} of ${options.users} users (${mergeErrors(results.map((r) => r.result.errors))}; at most ${inFlight} in flight)\n`,
  );
}

function startWorkers(options: BenchOptions): WorkerHandle[] {
  return Array.from(
    { length: options.workers },
    () => new WorkerHandle(fork(WORKER, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] })),
  );
}

function taskFor(options: BenchOptions, i: number) {
  const per = Math.ceil(options.users / options.workers);
  const from = Math.min(options.users, i * per);
  const to = Math.min(options.users, from + per);
  const share = (to - from) / options.users;
  return {
    urls: options.urls,
    domain: options.domain,
    userPattern: options.userPattern,
    firstUser: options.firstUser,
    totalUsers: options.users,
    from,
    to,
    password: options.password,
    mechanism: options.mechanism,
    login: options.login,
    loginRate: options.loginRate * share,
    maxLoginsInFlight:
      options.loginsInFlight > 0 ? Math.max(1, Math.round(options.loginsInFlight * share)) : 0,
    keepaliveMs: options.keepaliveMs,
    presenceAndRoster: options.presenceAndRoster,
    answerPings: options.answerPings,
    streamManagement: options.streamManagement,
    loginTimeoutMs: options.loginTimeoutMs,
    localAddresses: options.localAddresses,
  };
}

function loginReport(
  options: BenchOptions,
  results: LoginResult[],
  window: ReturnType<ProcWindow["end"]>,
): PhaseReport {
  const latency = new LatencyHistogram();
  for (const r of results) latency.merge(r.latency);
  const succeeded = sum(results.map((r) => r.succeeded));
  const elapsed = Math.max(...results.map((r) => r.elapsedMs)) / 1000;
  return {
    phase: "login",
    figures: {
      users: options.users,
      mechanism: options.login === "fast" ? "HT-SHA-256-NONE" : options.mechanism,
      login: options.login,
      "offered /s": options.loginRate,
      "in flight at most": options.loginsInFlight > 0 ? options.loginsInFlight : "open loop",
      "most in flight": sum(results.map((r) => r.mostInFlight)),
      "achieved /s": succeeded / elapsed,
      "logged in": succeeded,
      failed: options.users - succeeded,
      errors: mergeErrors(results.map((r) => r.errors)),
      ...latencyFigures(latency),
      "server CPU ms per login": succeeded > 0 ? (window.cpuSeconds * 1000) / succeeded : 0,
    },
    processes: window.usage,
  };
}

/**
 * The chat or presence phase: every worker sends its share open loop; then the deliveries
 * are awaited until all expected ones arrived or the drain time is up.
 */
async function loadPhase(
  options: BenchOptions,
  kind: "chat" | "presence",
  workers: WorkerHandle[],
  processes: WatchedProcess[],
): Promise<PhaseReport> {
  const window = new ProcWindow(processes);
  const share = { rate: options.rate / workers.length, durationMs: options.durationMs };
  const message: ToWorker =
    kind === "chat"
      ? { type: "chat", task: { ...share, bodyBytes: options.bodyBytes } }
      : { type: "presence", task: { ...share, ring: options.rosterRing } };
  const sentReplies = await Promise.all(workers.map((w) => w.request(message, "chat-sent")));
  const sent = sum(sentReplies.map((m) => m.sent));
  const expected = sum(sentReplies.map((m) => m.expected));
  const drainUntil = Date.now() + options.drainMs;
  while (Date.now() < drainUntil && sum(workers.map((w) => w.progress.received)) < expected)
    await new Promise((r) => setTimeout(r, 50));
  const results: ChatResult[] = (
    await Promise.all(workers.map((w) => w.request({ type: "chat-report" }, "chat-done")))
  ).map((m) => m.result);
  const used = window.end();
  const latency = new LatencyHistogram();
  for (const r of results) latency.merge(r.latency);
  const received = sum(results.map((r) => r.received));
  const seconds = options.durationMs / 1000;
  const unit = kind === "chat" ? "msg" : "change";
  return {
    phase: kind,
    figures: {
      users: options.users,
      ...(kind === "presence" ? { contacts: options.rosterRing } : {}),
      [`offered ${unit}/s`]: options.rate,
      [`sent ${unit}/s`]: sent / seconds,
      [kind === "chat" ? "delivered msg/s" : "deliveries/s"]: received / seconds,
      sent,
      ...(kind === "presence" ? { expected } : {}),
      delivered: received,
      lost: expected - received,
      duplicates: sum(results.map((r) => r.duplicates)),
      misrouted: sum(results.map((r) => r.misrouted)),
      "not sent": sum(results.map((r) => r.notSent)),
      "generator behind": Math.max(...results.map((r) => r.maxBehind)),
      ...(options.streamManagement
        ? { "XEP-0198 acks answered": sum(results.map((r) => r.acksAnswered)) }
        : {}),
      ...latencyFigures(latency),
      "mean ms": latency.meanMs,
      [kind === "chat" ? "server CPU ms per msg" : "server CPU ms per delivery"]:
        received > 0 ? (used.cpuSeconds * 1000) / received : 0,
    },
    processes: used.usage,
  };
}

function printProgress(workers: WorkerHandle[], startedMs: number): void {
  const p = workers.map((w) => w.progress);
  const total = (pick: (x: WorkerHandle["progress"]) => number) => sum(p.map(pick));
  process.stderr.write(
    `\r${Math.round((Date.now() - startedMs) / 1000)} s: logged in ${total((x) => x.loggedIn)}  held ${total((x) => x.held)}  failed ${total((x) => x.failed)}  in flight ${total((x) => x.inFlight)}  sent ${total((x) => x.sent)}  received ${total((x) => x.received)}   `,
  );
}
