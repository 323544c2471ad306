// CPU time and resident memory of server processes, read from /proc (Linux). The bench samples
// them before and after a measured phase, so CPU per message or per login counts every
// Megaphone process and Redis, the way the capacity table reports them.
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat times: 100 on every Linux we run on. */
const CLOCK_TICKS = 100;
const PAGE_BYTES = 4096;

export interface WatchedProcess {
  pid: number;
  /** What it is: edge, session, all-in-one, redis, or the command's name. */
  role: string;
}

export interface ProcSample {
  pid: number;
  /** User + system CPU seconds since the process started. */
  cpuSeconds: number;
  rssBytes: number;
  /**
   * Times its main thread (a Node process's event loop, Redis's command loop) went to sleep
   * waiting and was woken again: voluntary context switches. Work per wake-up is what a
   * process pays again for every message that arrives while it sleeps (docs/capacity.md).
   */
  wakeups: number;
  /**
   * The same for each of its threads, by thread id. A Node process's helper threads (GC, the
   * libuv pool) and an Erlang VM's schedulers count here, so runtimes that work on threads
   * other than the main one compare.
   */
  threadWakeups: Map<number, number>;
}

/** Voluntary context switches of one thread, from its status file; 0 if unreadable. */
function voluntarySwitches(statusPath: string): number {
  try {
    const status = readFileSync(statusPath, "utf8");
    return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Each thread's voluntary context switches, by thread id (the main thread's is the pid). */
function threadSwitches(pid: number): Map<number, number> {
  const byThread = new Map<number, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`))
      byThread.set(Number(tid), voluntarySwitches(`/proc/${pid}/task/${tid}/status`));
  } catch {
    // gone: no threads
  }
  return byThread;
}

export function sampleProcess(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses: fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const rssPages = Number(fields[21]);
    const threads = threadSwitches(pid);
    return {
      pid,
      cpuSeconds: (utime + stime) / CLOCK_TICKS,
      rssBytes: rssPages * PAGE_BYTES,
      // The main thread's id is the process's.
      wakeups: threads.get(pid) ?? 0,
      threadWakeups: threads,
    };
  } catch {
    return undefined; // gone
  }
}

/** The role of a process from its command line, or undefined if it is not one of ours. */
export function roleOf(argv: string[]): string | undefined {
  const exe = argv[0]?.split("/").pop() ?? "";
  if (exe.startsWith("redis-server")) return "redis";
  if (exe === "beam.smp" && argv.some((arg) => arg.includes("ejabberd"))) return "ejabberd";
  const cli = argv.findIndex((arg) => /megaphone|cli\/main\.js$/.test(arg));
  if (cli < 0 || !/node$/.test(exe)) return undefined;
  const command = argv.slice(cli + 1).find((arg) => !arg.startsWith("-"));
  if (command === "edge" || command === "session") return command;
  if (command === "start") return "all-in-one";
  return undefined;
}

/** The given processes, each with its role read from its command line. */
export function describeProcesses(pids: number[]): WatchedProcess[] {
  return pids.map((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
      return { pid, role: roleOf(argv) ?? argv[0]?.split("/").pop() ?? "process" };
    } catch {
      return { pid, role: "gone" };
    }
  });
}

/**
 * Megaphone services and Redis servers running on this machine (by their command lines).
 * `redisPorts`, when given, keeps only the Redis servers listening on those ports.
 */
export function discoverProcesses(redisPorts?: number[]): WatchedProcess[] {
  const found: WatchedProcess[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter(Boolean);
    } catch {
      continue;
    }
    const role = roleOf(argv);
    if (!role) continue;
    if (role === "redis" && redisPorts && !redisPorts.some((p) => argv.join(" ").includes(`:${p}`)))
      continue;
    found.push({ pid: Number(entry), role });
  }
  return found.sort((a, b) => a.role.localeCompare(b.role) || a.pid - b.pid);
}

export interface ProcUsage extends WatchedProcess {
  /** CPU seconds used between the two samples. */
  cpuSeconds: number;
  /** Share of one core over the interval (1 = a whole core). */
  cores: number;
  rssBytes: number;
  /** Wake-ups of its main thread between the two samples (ProcSample.wakeups). */
  wakeups: number;
  /**
   * Wake-ups of all its threads between the two samples (ProcSample.threadWakeups): a thread
   * started meanwhile counts from zero; one that ended meanwhile is missing from the sum.
   */
  threadWakeups: number;
}

/** Usage of each process between `before` and `after`, `seconds` apart. */
export function usageBetween(
  processes: WatchedProcess[],
  before: Map<number, ProcSample>,
  after: Map<number, ProcSample>,
  seconds: number,
): ProcUsage[] {
  return processes.flatMap((p) => {
    const a = before.get(p.pid);
    const b = after.get(p.pid);
    if (!a || !b) return [];
    const cpuSeconds = b.cpuSeconds - a.cpuSeconds;
    return [
      {
        ...p,
        cpuSeconds,
        cores: seconds > 0 ? cpuSeconds / seconds : 0,
        rssBytes: b.rssBytes,
        wakeups: b.wakeups - a.wakeups,
        threadWakeups: wakeupsBetween(a.threadWakeups, b.threadWakeups),
      },
    ];
  });
}

function wakeupsBetween(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [tid, count] of after) sum += count - (before.get(tid) ?? 0);
  return sum;
}

export function sampleAll(processes: WatchedProcess[]): Map<number, ProcSample> {
  const samples = new Map<number, ProcSample>();
  for (const p of processes) {
    const s = sampleProcess(p.pid);
    if (s) samples.set(p.pid, s);
  }
  return samples;
}
