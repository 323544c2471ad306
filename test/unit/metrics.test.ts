// The metrics seam (services/shared/metrics.ts) on prom-client: what a registry renders (HELP,
// TYPE, histogram buckets, collectors at scrape time), the process's default metrics in every
// registry, registries independent of one another, the Redis command timer shared by two
// registries, entry ages, and the version megaphone_build_info reports.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { entryAgeSeconds } from "../../services/shared/bus/entry-age.js";
import { MetricsRegistry, registerBuildInfo } from "../../services/shared/metrics.js";
import { RedisCommandTimer } from "../../services/shared/redis/command-timer.js";
import { MEGAPHONE_VERSION } from "../../services/shared/version.js";
import { createSessionMetrics } from "../../services/session/session-metrics.js";

const PACKAGE_JSON = fileURLToPath(new URL("../../../package.json", import.meta.url));

/** The sample lines of `text` (no comments). */
const samples = (text: string) => text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));

describe("metrics seam (prom-client)", () => {
  it("renders HELP and TYPE for counters, gauges and histograms, with their label values", async () => {
    const registry = new MetricsRegistry();
    registry.counter("t_frames_total", "Frames seen.").inc(3);
    registry.counter("t_closes_total", "Closes, by reason.", ["reason"]).inc({ reason: "idle" });
    registry.gauge("t_open", "Open things.").set(2);
    registry.histogram("t_wait_seconds", "Waits.", [0.1, 1]).observe(0.5);
    const text = await registry.metrics();
    const lines = text.split("\n");
    for (const line of [
      "# HELP t_frames_total Frames seen.",
      "# TYPE t_frames_total counter",
      "t_frames_total 3",
      "# TYPE t_closes_total counter",
      't_closes_total{reason="idle"} 1',
      "# TYPE t_open gauge",
      "t_open 2",
      "# HELP t_wait_seconds Waits.",
      "# TYPE t_wait_seconds histogram",
    ])
      assert.ok(lines.includes(line), `${line} in\n${text}`);
    assert.equal(registry.contentType, "text/plain; version=0.0.4; charset=utf-8");
  });

  it("counts a histogram's observations into its explicit buckets, cumulatively", async () => {
    const registry = new MetricsRegistry();
    const h = registry.histogram("t_rtt_seconds", "Round trips.", [0.0001, 0.001, 0.01], ["cmd"]);
    for (const v of [0.00005, 0.0005, 0.0007, 0.5]) h.observe({ cmd: "xadd" }, v);
    const lines = samples(await registry.metrics()).filter((l) => l.startsWith("t_rtt_seconds"));
    assert.deepEqual(lines, [
      't_rtt_seconds_bucket{le="0.0001",cmd="xadd"} 1',
      't_rtt_seconds_bucket{le="0.001",cmd="xadd"} 3',
      't_rtt_seconds_bucket{le="0.01",cmd="xadd"} 3',
      't_rtt_seconds_bucket{le="+Inf",cmd="xadd"} 4',
      't_rtt_seconds_sum{cmd="xadd"} 0.50125',
      't_rtt_seconds_count{cmd="xadd"} 4',
    ]);
  });

  it("times into a histogram's series by label, refuses labels it was not given, and resets", async () => {
    const registry = new MetricsRegistry();
    const h = registry.histogram("t_work_seconds", "Work.", [1, 60], ["kind"]);
    const end = h.startTimer({ kind: "data" });
    assert.ok(end() < 1);
    h.observe({ kind: "open" }, 90);
    h.observe({ kind: "data" }, 2);
    assert.throws(() => h.observe({ kind: "x", other: "y" } as never, 1), /unknown label other/);
    const lines = samples(await registry.metrics()).filter((l) => l.startsWith("t_work_seconds"));
    assert.deepEqual(
      lines.filter((l) => l.includes("_count") || l.includes('le="1"')),
      [
        't_work_seconds_bucket{le="1",kind="data"} 1',
        't_work_seconds_count{kind="data"} 2',
        't_work_seconds_bucket{le="1",kind="open"} 0',
        't_work_seconds_count{kind="open"} 1',
      ],
    );
    h.reset();
    assert.deepEqual(
      samples(await registry.metrics()).filter((l) => l.startsWith("t_work_seconds")),
      [],
    );
  });

  it("runs a gauge's collector at each scrape, and an unlabelled counter shows 0 before any event", async () => {
    const registry = new MetricsRegistry();
    let open = 1;
    registry.gauge("t_sockets", "Open sockets.", [], (g) => g.set(open));
    registry.counter("t_never_total", "Never counted.");
    assert.ok(samples(await registry.metrics()).includes("t_sockets 1"));
    open = 5;
    const text = await registry.metrics();
    assert.ok(samples(text).includes("t_sockets 5"));
    assert.ok(samples(text).includes("t_never_total 0"));
  });

  it("serves the process's default metrics, unprefixed, in every registry", async () => {
    for (const registry of [new MetricsRegistry(), new MetricsRegistry()]) {
      const text = await registry.metrics();
      for (const name of [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "nodejs_eventloop_lag_seconds",
        "nodejs_eventloop_lag_p99_seconds",
        "nodejs_heap_size_used_bytes",
      ])
        assert.match(text, new RegExp(`^${name} [0-9.e+-]+$`, "m"), name);
      assert.match(text, /^# TYPE nodejs_gc_duration_seconds histogram$/m);
    }
  });

  it("keeps registries independent: the same names in two, each with its own values", async () => {
    const [a, b] = [new MetricsRegistry(), new MetricsRegistry()];
    a.counter("t_logins_total", "Logins.").inc(2);
    b.counter("t_logins_total", "Logins.");
    assert.ok(samples(await a.metrics()).includes("t_logins_total 2"));
    assert.ok(samples(await b.metrics()).includes("t_logins_total 0"));
    assert.throws(() => a.counter("t_logins_total", "Again."), /already been registered/);
  });

  it("serves another registry's metrics too (a node), each family once", async () => {
    const [edge, session] = [new MetricsRegistry(), new MetricsRegistry()];
    edge.counter("t_edge_frames_total", "Frames.").inc(3);
    session.gauge("t_session_shards", "Shards.").set(4);
    edge.include(session);
    const text = await edge.metrics();
    assert.ok(samples(text).includes("t_edge_frames_total 3"));
    assert.ok(samples(text).includes("t_session_shards 4"));
    const types = text.split("\n").filter((l) => l.startsWith("# TYPE "));
    assert.equal(types.length, new Set(types).size, "no family twice (the process's are shared)");
    assert.ok(types.includes("# TYPE process_cpu_user_seconds_total counter"));
  });

  it("times Redis commands, failed ones too, into one histogram two registries can serve", async () => {
    const timer = new RedisCommandTimer();
    const [edge, session] = [new MetricsRegistry(), new MetricsRegistry()];
    edge.register(timer.histogram);
    session.register(timer.histogram);
    assert.equal(await timer.time("xadd", async () => "1-0"), "1-0");
    await assert.rejects(
      timer.time("xadd", async () => Promise.reject(new Error("down"))),
      /down/,
    );
    const count = 'megaphone_redis_command_duration_seconds_count{command="xadd"} 2';
    for (const registry of [edge, session])
      assert.ok(samples(await registry.metrics()).includes(count));
    const text = await edge.metrics();
    assert.match(
      text,
      /_bucket\{le="0\.0001",command="xadd"\} [0-2]$/m,
      "a sub-millisecond bucket",
    );
  });

  it("counts logins by known mechanism only: a made-up one is `other`", async () => {
    const metrics = createSessionMetrics();
    metrics.observer.login("SCRAM-SHA-256", "success");
    metrics.observer.login("X-EVIL-" + "a".repeat(50), "invalid-mechanism");
    const lines = samples(await metrics.registry.metrics());
    assert.ok(
      lines.includes(
        'megaphone_session_logins_total{mechanism="SCRAM-SHA-256",result="success"} 1',
      ),
    );
    assert.ok(
      lines.includes(
        'megaphone_session_logins_total{mechanism="other",result="invalid-mechanism"} 1',
      ),
    );
  });

  it("reports the package's version as megaphone_build_info", async () => {
    const { version } = JSON.parse(await readFile(PACKAGE_JSON, "utf8")) as { version: string };
    assert.equal(MEGAPHONE_VERSION, version);
    const registry = new MetricsRegistry();
    registerBuildInfo(registry, MEGAPHONE_VERSION);
    assert.ok(
      samples(await registry.metrics()).includes(`megaphone_build_info{version="${version}"} 1`),
    );
  });

  it("ages a stream entry from its id's milliseconds, never below zero", () => {
    assert.equal(entryAgeSeconds("1000-3", 3500), 2.5);
    assert.equal(entryAgeSeconds("5000-0", 3500), 0, "the writer's clock ahead of ours");
    assert.equal(entryAgeSeconds("nonsense", 3500), 0);
  });
});
