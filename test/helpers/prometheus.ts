// A private Prometheus server for a test run: the real `prometheus` binary (Debian's package,
// installed by .ci/run when missing) on a free loopback port, with its own config and a
// temporary storage directory. Never the packaged service or its port 9090. Targets get their
// labels as static labels here, the labels a ServiceMonitor's relabelings set in Kubernetes.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { until } from "./poll.js";
import { freePort } from "./redis-server.js";

const BINARY = process.env.PROMETHEUS ?? "prometheus";

export const PROMETHEUS_MISSING =
  "prometheus not found: the dashboard checks run a real Prometheus (apt-get install prometheus; " +
  ".ci/run installs it when missing), or point PROMETHEUS at a prometheus 2.x binary.";

/** One /metrics endpoint to scrape, with the target labels Prometheus attaches to its series. */
export interface ScrapeTarget {
  /** host:port */
  address: string;
  labels: Record<string, string>;
}

/** One series of a query result: its labels and value ("NaN" and "+Inf" are strings too). */
export interface Sample {
  metric: Record<string, string>;
  value: number;
}

interface ApiResponse<T> {
  status: "success" | "error";
  data: T;
  error?: string;
  errorType?: string;
}

interface ActiveTarget {
  labels: Record<string, string>;
  health: "up" | "down" | "unknown";
  lastScrape: string;
  lastError: string;
  scrapeUrl: string;
}

export interface PrometheusOptions {
  scrapeIntervalSeconds?: number;
}

export class Prometheus {
  private constructor(
    readonly url: string,
    private readonly process: ChildProcess,
    private readonly dir: string,
  ) {}

  static async start(
    targets: ScrapeTarget[],
    options: PrometheusOptions = {},
  ): Promise<Prometheus> {
    const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "megaphone-prometheus-"));
    // JSON is YAML: no YAML writer needed.
    const config = {
      global: {
        scrape_interval: interval,
        scrape_timeout: interval,
        evaluation_interval: interval,
      },
      scrape_configs: [
        {
          job_name: "megaphone",
          metrics_path: "/metrics",
          static_configs: targets.map((t) => ({ targets: [t.address], labels: t.labels })),
        },
      ],
    };
    writeFileSync(join(dir, "prometheus.yml"), JSON.stringify(config, null, 2));
    const child = spawn(
      BINARY,
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    const keep = (b: Buffer) => (output = (output + b.toString()).slice(-4000));
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const failed = new Promise<never>((_, reject) => {
      child.once("error", (err: NodeJS.ErrnoException) =>
        reject(err.code === "ENOENT" ? new Error(PROMETHEUS_MISSING) : err),
      );
      child.once("exit", (code) =>
        reject(new Error(`prometheus exited (${code}) before it was ready:\n${output}`)),
      );
    });
    failed.catch(() => undefined); // raced below; after readiness an exit is not an error here
    const url = `http://127.0.0.1:${port}`;
    const prometheus = new Prometheus(url, child, dir);
    try {
      await Promise.race([
        failed,
        until(
          async () => (await fetch(`${url}/-/ready`).catch(() => undefined))?.status === 200,
          "prometheus to be ready",
          15000,
          50,
        ),
      ]);
    } catch (err) {
      await prometheus.stop();
      throw err;
    }
    return prometheus;
  }

  private async api<T>(path: string, params: Record<string, string | string[]>): Promise<T> {
    const body = new URLSearchParams();
    for (const [name, value] of Object.entries(params))
      for (const v of Array.isArray(value) ? value : [value]) body.append(name, v);
    const res = await fetch(`${this.url}${path}`, { method: "POST", body });
    const answer = (await res.json()) as ApiResponse<T>;
    if (answer.status !== "success")
      throw new Error(`${path} ${JSON.stringify(params)}: ${answer.errorType}: ${answer.error}`);
    return answer.data;
  }

  /** An instant query (now, or at `time` in seconds since the epoch); vectors and scalars. */
  async query(expr: string, time?: number): Promise<Sample[]> {
    const data = await this.api<{
      resultType: string;
      result: { metric: Record<string, string>; value: [number, string] }[] | [number, string];
    }>("/api/v1/query", time === undefined ? { query: expr } : { query: expr, time: String(time) });
    if (data.resultType === "scalar") {
      const [, v] = data.result as [number, string];
      return [{ metric: {}, value: Number(v) }];
    }
    if (data.resultType !== "vector")
      throw new Error(`${expr}: a ${data.resultType}, not an instant vector`);
    return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map(
      (r) => ({ metric: r.metric, value: Number(r.value[1]) }),
    );
  }

  /** Label sets of the series matching `selector` (what Grafana's label_values() asks). */
  series(selector: string): Promise<Record<string, string>[]> {
    return this.api("/api/v1/series", { "match[]": selector });
  }

  async activeTargets(): Promise<ActiveTarget[]> {
    const res = await fetch(`${this.url}/api/v1/targets?state=active`);
    const answer = (await res.json()) as ApiResponse<{ activeTargets: ActiveTarget[] }>;
    return answer.data.activeTargets;
  }

  /** Waits until every target has been scraped successfully (bounded). */
  async waitTargetsUp(count: number, timeoutMs = 15000): Promise<void> {
    let last: ActiveTarget[] = [];
    await until(
      async () => {
        last = await this.activeTargets();
        return last.length === count && last.every((t) => t.health === "up");
      },
      `${count} targets up (now: ${JSON.stringify(last.map((t) => [t.scrapeUrl, t.health, t.lastError]))})`,
      timeoutMs,
      100,
    );
  }

  /**
   * Waits until every target has been scraped after `sinceMs` (ms since the epoch) plus one
   * interval, so that each has at least two samples taken after that moment (rates need two).
   */
  async waitScrapedSince(sinceMs: number, intervalMs = 1000, timeoutMs = 10000): Promise<void> {
    await until(
      async () =>
        (await this.activeTargets()).every(
          (t) => t.health === "up" && Date.parse(t.lastScrape) > sinceMs + intervalMs,
        ),
      `every target scraped twice after ${new Date(sinceMs).toISOString()}`,
      timeoutMs,
      100,
    );
  }

  async stop(): Promise<void> {
    const running =
      this.process.pid !== undefined &&
      this.process.exitCode === null &&
      this.process.signalCode === null;
    if (running) {
      const exited = new Promise((resolve) => this.process.once("exit", resolve));
      this.process.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
