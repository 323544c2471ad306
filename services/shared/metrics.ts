// The metrics seam: one prom-client Registry per edge or session instance (several run in one
// test process, so prom-client's global registry is never used), the process's default metrics
// in each, and the Prometheus text every /metrics endpoint serves. Callers name and describe
// their metrics here and keep prom-client's own types; nothing else imports prom-client.
import {
  Counter,
  Gauge,
  Registry,
  collectDefaultMetrics,
  type Metric,
  type MetricObject,
} from "prom-client";

export type { Counter, Gauge };

/** Content-Type of `metrics()`'s output (the Prometheus text format 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE = new Registry().contentType;

/**
 * The process's default metrics (process_*, nodejs_*), made once per process. Each call of
 * prom-client's collectDefaultMetrics starts its own event-loop-delay monitor and GC
 * PerformanceObserver and never stops them, so a call per registry would leave one more of each
 * behind for every edge or session a test starts. They measure the process, not an instance:
 * every registry shares these metric objects instead. Scraping one registry resets the
 * event-loop-delay percentiles they share (nodejs_eventloop_lag_p99_seconds and friends cover
 * the time since the last scrape of any registry); a deployed process serves one registry.
 */
let processMetrics: MetricObject[] | undefined;

/**
 * The event-loop-delay monitor's timer period. prom-client's default, 10 ms, woke every process
 * 100 times a second: an idle edge, session member or all-in-one spent 0.6–0.75 % of a core
 * on it (35–45 % of its idle CPU, docs/capacity.md "Idle cost"). At 100 ms a stall of 100 ms or
 * more is always seen and a shorter one in proportion to its length, which the lag panel's p99
 * over a scrape interval (150 samples at 15 s) still shows.
 */
export const EVENT_LOOP_MONITOR_MS = 100;

function defaultMetrics(): MetricObject[] {
  if (!processMetrics) {
    const register = new Registry();
    collectDefaultMetrics({ register, eventLoopMonitoringPrecision: EVENT_LOOP_MONITOR_MS });
    processMetrics = register.getMetricsAsArray();
  }
  return processMetrics;
}

export class MetricsRegistry {
  private readonly registry = new Registry();

  constructor() {
    for (const metric of defaultMetrics())
      this.registry.registerMetric(metric as unknown as Metric);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** A value that only goes up (restarts at 0 with the process). Name it `…_total`. */
  counter<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
  ): Counter<L> {
    return new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  /**
   * A value that goes up and down. `collect`, if given, sets its current value(s) just before
   * each scrape (gauges of state another object owns).
   */
  gauge<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
    collect?: (gauge: Gauge<L>) => void,
  ): Gauge<L> {
    const gauge: Gauge<L> = new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      ...(collect ? { collect: (): void => collect(gauge) } : {}),
    });
    return gauge;
  }

  /** Observations counted into explicit `buckets` (upper bounds, in the metric's unit). */
  histogram<L extends string = never>(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: readonly L[] = [],
  ): Histogram<L> {
    const histogram = new Histogram<L>(name, help, buckets, labelNames);
    this.register(histogram);
    return histogram;
  }

  /** Adds a metric made elsewhere (one shared by the tiers of one process, e.g. Redis timings). */
  register(metric: Metric<string> | Histogram<string>): void {
    // A Histogram is not a prom-client class, but has what the registry uses of one: name,
    // get() and reset().
    this.registry.registerMetric(metric as unknown as Metric<string>);
  }

  /**
   * Serves `other`'s metrics here too (a node's edge serves its session member's); one both
   * have (the process's, the shared Redis timings) is served once.
   */
  include(other: MetricsRegistry): void {
    for (const metric of other.registry.getMetricsAsArray())
      if (!this.registry.getSingleMetric(metric.name))
        this.registry.registerMetric(metric as unknown as Metric);
  }

  /** Every metric, in the Prometheus text format (collectors run first). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

/**
 * A histogram in no registry yet: for a metric shared by the registries of one process (the
 * edge and session of all-in-one share one backend), each of which registers it.
 */
export function unregisteredHistogram<L extends string = never>(
  name: string,
  help: string,
  buckets: readonly number[],
  labelNames: readonly L[] = [],
): Histogram<L> {
  return new Histogram<L>(name, help, buckets, labelNames);
}

/** Counts of one label set: per bucket (not cumulative), then the sum and the count. */
interface Series {
  labels: Record<string, string>;
  counts: number[];
  sum: number;
  count: number;
}

/**
 * A Prometheus histogram for the hot path: observed per Redis command and per stream entry.
 * prom-client's copies, validates and hashes the label object on every observation (4–5 % of a
 * session's CPU under chat load, docs/capacity.md); this one keeps one series per label value
 * set, found by a string key, and formats the same text at scrape time (prom-client's registry
 * calls get()). One label at most per histogram here, which is all the callers use.
 */
export class Histogram<L extends string = never> {
  readonly type = "histogram";
  private readonly bounds: number[];
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
    private readonly labelNames: readonly L[] = [],
  ) {
    if (labelNames.length > 1) throw new Error(`${name}: at most one label`);
    this.bounds = [...buckets].sort((a, b) => a - b);
  }

  observe(value: number): void;
  observe(labels: Partial<Record<L, string>>, value: number): void;
  observe(first: number | Partial<Record<L, string>>, second?: number): void {
    if (typeof first === "number") this.add(undefined, first);
    else this.add(first, second as number);
  }

  /** Starts timing; the returned function records the seconds since, under `labels`. */
  startTimer(labels?: Partial<Record<L, string>>): () => number {
    const start = performance.now();
    return () => {
      const seconds = (performance.now() - start) / 1000;
      this.add(labels, seconds);
      return seconds;
    };
  }

  reset(): void {
    this.series.clear();
  }

  private add(labels: Partial<Record<L, string>> | undefined, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`${this.name}: not a number: ${value}`);
    const labelName = this.labelNames[0];
    const key = labelName === undefined ? "" : (labels?.[labelName] ?? "");
    let series = this.series.get(key);
    if (!series) {
      const extra = labels ? Object.keys(labels).filter((n) => n !== labelName) : [];
      if (extra.length > 0) throw new Error(`${this.name}: unknown label ${extra[0]}`);
      series = {
        labels: labelName === undefined ? {} : { [labelName]: key },
        counts: new Array<number>(this.bounds.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      this.series.set(key, series);
    }
    let bucket = 0;
    while (bucket < this.bounds.length && value > this.bounds[bucket]) bucket++;
    series.counts[bucket]++;
    series.sum += value;
    series.count++;
  }

  /** What prom-client's registry formats: cumulative buckets, +Inf, sum and count per series. */
  get(): MetricObject {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] =
      [];
    for (const { labels, counts, sum, count } of this.series.values()) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += counts[i];
        values.push({
          labels: { le: bound, ...labels },
          value: cumulative,
          metricName: `${this.name}_bucket`,
        });
      });
      values.push({
        labels: { le: "+Inf", ...labels },
        value: count,
        metricName: `${this.name}_bucket`,
      });
      values.push({ labels, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: count, metricName: `${this.name}_count` });
    }
    return {
      name: this.name,
      help: this.help,
      type: "histogram",
      values,
      aggregator: "sum",
    } as unknown as MetricObject;
  }
}

/** Ages and waits, in seconds: 0.5 ms (a quiet local hop) to 10 s (a backlog). */
export const DELAY_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Work done in-process, in seconds: 0.1 ms to 5 s (a PBKDF2 derivation is tens of ms). */
export const DURATION_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/** Entries per stream read: 1 to inboxReadCount's ceiling (10000), powers of two. */
export const BATCH_BUCKETS_ENTRIES = [
  1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192,
];

/** megaphone_build_info{version} 1: which version each pod runs (joins on pod in queries). */
export function registerBuildInfo(registry: MetricsRegistry, version: string): void {
  registry
    .gauge(
      "megaphone_build_info",
      "Always 1; the version label is the running Megaphone version.",
      ["version"],
    )
    .set({ version }, 1);
}
