// The bench tool's parts that need no server: its latency histogram, its reading of /proc and
// its options.
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { parseBenchArgs } from "../../services/bench/bench-options.js";
import { LatencyHistogram } from "../../services/bench/histogram.js";
import { roleOf, sampleAll, sampleProcess, usageBetween } from "../../services/bench/proc-stats.js";

describe("bench tool", () => {
  it("histogram percentiles are within the 2 % bucket width, and merge across processes", () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    for (let ms = 1; ms <= 1000; ms++) (ms % 2 ? a : b).recordMicros(ms * 1000);
    a.merge(b.snapshot());
    assert.equal(a.count, 1000);
    for (const [p, expected] of [
      [50, 500],
      [90, 900],
      [99, 990],
    ] as const) {
      const got = a.percentileMs(p);
      assert.ok(got >= expected && got <= expected * 1.021, `p${p} = ${got}`);
    }
    assert.equal(a.maxMs, 1000);
    assert.ok(Math.abs(a.meanMs - 500.5) < 0.01);
    assert.equal(new LatencyHistogram().percentileMs(99), 0);
  });

  it("tells Megaphone services and Redis from other processes by their command lines", () => {
    assert.equal(roleOf(["/usr/bin/node", "/app/dist/services/cli/main.js", "edge"]), "edge");
    assert.equal(
      roleOf(["node", "--cpu-prof", "dist/services/cli/main.js", "session", "--id", "s"]),
      "session",
    );
    assert.equal(roleOf(["node", "/usr/bin/megaphone", "start", "--demo"]), "all-in-one");
    assert.equal(roleOf(["redis-server *:6380"]), "redis");
    assert.equal(roleOf(["/usr/lib/erlang/bin/beam.smp", "-s", "ejabberd"]), "ejabberd");
    assert.equal(roleOf(["node", "dist/services/cli/main.js", "bench", "chat"]), undefined);
    assert.equal(roleOf(["/usr/bin/python3", "megaphone.py"]), undefined);
  });

  it("reads this process's CPU time and resident memory from /proc", () => {
    const sample = sampleProcess(process.pid);
    assert.ok(sample && sample.cpuSeconds > 0 && sample.rssBytes > 10 * 2 ** 20);
    assert.equal(sampleProcess(2 ** 22 + 1), undefined);
  });

  it("counts the wake-ups of a process's main thread: each sleep it is woken from", async () => {
    const before = sampleProcess(process.pid)?.wakeups ?? NaN;
    // Each timer puts the event loop to sleep until it fires: one wake-up at least.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 2));
    const woken = (sampleProcess(process.pid)?.wakeups ?? NaN) - before;
    assert.ok(woken >= 20 && woken < 200, `woken ${woken} times`);
  });

  it("counts the wake-ups of each of a process's threads, not only its main thread's", async () => {
    const self = [{ pid: process.pid, role: "test" }];
    const before = sampleAll(self);
    // A worker thread that sleeps 20 times on a timer, then stays until told to go (so that it
    // is still there to be sampled): its wake-ups are not the main thread's.
    const worker = new Worker(
      `const { parentPort } = require("node:worker_threads");
       let n = 0;
       const tick = () => (++n < 20 ? setTimeout(tick, 2) : parentPort.postMessage("slept"));
       tick();
       parentPort.once("message", () => process.exit(0));`,
      { eval: true },
    );
    await new Promise((resolve) => worker.once("message", resolve));
    const after = sampleAll(self);
    worker.postMessage("go");
    await new Promise((resolve) => worker.once("exit", resolve));
    const [usage] = usageBetween(self, before, after, 1);
    const others = usage.threadWakeups - usage.wakeups;
    assert.ok(others >= 20 && others < 2000, `other threads woken ${others} times`);
    assert.equal(
      after.get(process.pid)?.threadWakeups.get(process.pid),
      after.get(process.pid)?.wakeups,
    );
  });

  it("parses options and refuses what it does not know", () => {
    const o = parseBenchArgs([
      "chat",
      "--users",
      "30000",
      "--rate=2000",
      "--source-addresses",
      "127.0.0.1-127.0.0.4",
    ]);
    assert.equal(o.users, 30000);
    assert.equal(o.rate, 2000);
    assert.equal(o.workers, 2, "one worker per 15,000 users");
    assert.deepEqual(o.localAddresses, ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    assert.equal(o.domain, "localhost");
    assert.throws(() => parseBenchArgs(["fly"]), /unknown scenario/);
    assert.throws(() => parseBenchArgs(["chat", "--colour", "red"]), /unknown option --colour/);
    assert.throws(() => parseBenchArgs(["login", "--mechanism", "DIGEST-MD5"]), /--mechanism/);
    assert.equal(o.login, "rfc6120");
    assert.equal(parseBenchArgs(["login", "--login", "fast"]).login, "fast");
    assert.equal(parseBenchArgs(["login", "--login=sasl2"]).login, "sasl2");
    assert.throws(() => parseBenchArgs(["login", "--login", "digest"]), /--login/);
    assert.throws(() => parseBenchArgs(["login", "--user-pattern", "bench@localhost"]), /\{n\}/);
    assert.equal(o.loginsInFlight, 0, "open loop unless bounded");
    assert.equal(o.keepaliveMs, 0, "answered server pings keep the edge's idle timeout away");
    assert.equal(o.answerPings, true);
    assert.equal(o.returning, false, "every measured login derives its key unless --returning");
    assert.equal(parseBenchArgs(["login", "--returning"]).returning, true);
    const ramp = parseBenchArgs([
      "idle",
      "--logins-in-flight",
      "64",
      "--keepalive",
      "30",
      "--no-ping-answers",
    ]);
    assert.equal(ramp.loginsInFlight, 64);
    assert.equal(ramp.keepaliveMs, 30000);
    assert.equal(ramp.answerPings, false);
    assert.throws(() => parseBenchArgs(["idle", "--keepalive", "-1"]), /--keepalive/);
    assert.equal(o.settleMs, 0, "one memory sample unless asked for a second");
    assert.equal(parseBenchArgs(["idle", "--settle", "150"]).settleMs, 150000);
    assert.throws(() => parseBenchArgs(["idle", "--settle", "-5"]), /--settle/);
  });
});
