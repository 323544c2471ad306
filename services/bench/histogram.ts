// A latency histogram with fixed log-spaced buckets (about 2 % wide, from 1 µs to ~100 s): cheap
// to record into, mergeable across worker processes, and exact enough for p50/p90/p99 reports.
const MIN_US = 1;
const GROWTH = 1.02;
const BUCKETS = Math.ceil(Math.log(100e6 / MIN_US) / Math.log(GROWTH)) + 1;
const LOG_GROWTH = Math.log(GROWTH);

export interface HistogramSnapshot {
  counts: number[];
  count: number;
  maxUs: number;
  sumUs: number;
}

export class LatencyHistogram {
  private counts = new Float64Array(BUCKETS);
  private total = 0;
  private maxUs = 0;
  private sumUs = 0;

  recordMicros(us: number): void {
    const value = Math.max(us, MIN_US);
    const bucket = Math.min(BUCKETS - 1, Math.floor(Math.log(value / MIN_US) / LOG_GROWTH));
    this.counts[bucket]++;
    this.total++;
    this.sumUs += value;
    if (value > this.maxUs) this.maxUs = value;
  }

  get count(): number {
    return this.total;
  }

  /** The value at percentile `p` (0..100), in milliseconds; the bucket's upper edge. */
  percentileMs(p: number): number {
    if (this.total === 0) return 0;
    const rank = Math.ceil((p / 100) * this.total);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(this.maxUs, MIN_US * GROWTH ** (i + 1)) / 1000;
    }
    return this.maxUs / 1000;
  }

  get maxMs(): number {
    return this.maxUs / 1000;
  }

  get meanMs(): number {
    return this.total === 0 ? 0 : this.sumUs / this.total / 1000;
  }

  /** A sparse, JSON-friendly form for sending between processes. */
  snapshot(): HistogramSnapshot {
    const counts: number[] = [];
    this.counts.forEach((c, i) => {
      if (c > 0) counts.push(i, c);
    });
    return { counts, count: this.total, maxUs: this.maxUs, sumUs: this.sumUs };
  }

  merge(other: HistogramSnapshot): void {
    for (let i = 0; i < other.counts.length; i += 2)
      this.counts[other.counts[i]] += other.counts[i + 1];
    this.total += other.count;
    this.sumUs += other.sumUs;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
  }
}

/** Microseconds on the machine's monotonic clock, comparable across processes of one host. */
export function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}
