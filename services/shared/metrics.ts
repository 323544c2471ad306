// A tiny Prometheus registry: counters and gauges with labels, rendered in the text exposition
// format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/). Used by the edge
// and the session tier alike. There is no global default registry: each process (or test) makes
// its own and serves `render()` on its /metrics endpoint.

/** Content-Type of `render()`'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Label values of one sample, keyed by label name. */
export type Labels<L extends string> = { readonly [K in L]: string };

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Sample {
  labels: string;
  value: number;
}

abstract class Metric<L extends string> {
  abstract readonly type: "counter" | "gauge";
  private readonly samples = new Map<string, Sample>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${name}`);
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith("__"))
        throw new Error(`invalid label name ${label} on metric ${name}`);
    }
  }

  /** The current value for `labels` (0 if never set). */
  get(labels?: Labels<L>): number {
    return this.samples.get(this.key(labels))?.value ?? 0;
  }

  protected add(labels: Labels<L> | undefined, by: number): void {
    this.sample(labels).value += by;
  }

  protected put(labels: Labels<L> | undefined, value: number): void {
    this.sample(labels).value = value;
  }

  /** Forgets every labelled sample (for gauges rebuilt from scratch by a collector). */
  reset(): void {
    this.samples.clear();
  }

  private sample(labels: Labels<L> | undefined): Sample {
    const key = this.key(labels);
    let sample = this.samples.get(key);
    if (!sample) this.samples.set(key, (sample = { labels: key, value: 0 }));
    return sample;
  }

  private key(labels: Labels<L> | undefined): string {
    if (this.labelNames.length === 0) return "";
    if (!labels) throw new Error(`metric ${this.name} needs labels ${this.labelNames.join(",")}`);
    const parts: string[] = [];
    for (const name of this.labelNames) {
      const value = labels[name];
      if (typeof value !== "string") throw new Error(`metric ${this.name} needs label ${name}`);
      parts.push(`${name}="${escapeLabelValue(value)}"`);
    }
    return `{${parts.join(",")}}`;
  }

  renderLines(): string[] {
    const lines = [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
    ];
    // An unlabelled metric always has its one sample, so a dashboard sees 0 rather than nothing.
    if (this.labelNames.length === 0 && this.samples.size === 0) lines.push(`${this.name} 0`);
    for (const { labels, value } of this.samples.values())
      lines.push(`${this.name}${labels} ${formatValue(value)}`);
    return lines;
  }
}

/** A value that only goes up (restarts at 0 with the process). Name it `…_total`. */
export class Counter<L extends string = never> extends Metric<L> {
  readonly type = "counter";

  inc(labels?: Labels<L>, by = 1): void {
    if (!(by >= 0)) throw new Error(`counter ${this.name} cannot go down (inc by ${by})`);
    this.add(labels, by);
  }
}

/** A value that goes up and down; may be filled by a collector just before each render. */
export class Gauge<L extends string = never> extends Metric<L> {
  readonly type = "gauge";

  constructor(
    name: string,
    help: string,
    labelNames: readonly L[],
    readonly collect?: (gauge: Gauge<L>) => void,
  ) {
    super(name, help, labelNames);
  }

  set(value: number, labels?: Labels<L>): void {
    this.put(labels, value);
  }

  inc(labels?: Labels<L>, by = 1): void {
    this.add(labels, by);
  }

  dec(labels?: Labels<L>, by = 1): void {
    this.add(labels, -by);
  }
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric<string>>();

  counter<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
  ): Counter<L> {
    return this.register(new Counter<L>(name, help, labelNames));
  }

  /** `collect`, if given, is called before every render to set the gauge's current value(s). */
  gauge<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
    collect?: (gauge: Gauge<L>) => void,
  ): Gauge<L> {
    return this.register(new Gauge<L>(name, help, labelNames, collect));
  }

  /** All metrics in registration order, in the Prometheus text format. */
  render(): string {
    const lines: string[] = [];
    for (const metric of this.metrics.values()) {
      if (metric instanceof Gauge) (metric as Gauge<string>).collect?.(metric);
      lines.push(...metric.renderLines());
    }
    return lines.join("\n") + "\n";
  }

  private register<M extends { readonly name: string }>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.metrics.set(metric.name, metric as unknown as Metric<string>);
    return metric;
  }
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
