// Reads tsung's text statistics (tsung.log: a "# stats: dump at T" block every 10 s) into the
// run's totals. Two kinds of lines:
//   stats: NAME COUNT MEAN STDDEV MAX MIN PREV_MEAN PREV_COUNT   a sample (times in ms): this
//          interval's count and mean, the run's max and min, and the mean and count before it;
//   stats: NAME A B                                             a counter or gauge: A is this
//          interval's value, B the run's total (for "connected", the current value; for
//          "users", the most at once).

export interface Sample {
  count: number;
  /** Milliseconds. */
  mean: number;
  max: number;
  min: number;
}

export interface TsungStats {
  /** Each sample over the whole run. */
  samples: Map<string, Sample>;
  /** Each counter's (or gauge's) last B. */
  totals: Map<string, number>;
  /** Each counter's (or gauge's) highest B at a dump (a gauge is seen every 10 s only). */
  peaks: Map<string, number>;
}

export function readTsungLog(text: string): TsungStats {
  const stats: TsungStats = { samples: new Map(), totals: new Map(), peaks: new Map() };
  for (const line of text.split("\n")) {
    const match = /^stats: (\S+) (.*)$/.exec(line);
    if (!match) continue;
    const [name, fields] = [match[1], match[2].split(" ").map(Number)];
    if (fields.length === 7) {
      const [count, mean, , max, min, prevMean, prevCount] = fields;
      const total = count + prevCount;
      stats.samples.set(name, {
        count: total,
        mean: total === 0 ? 0 : (count * mean + prevCount * prevMean) / total,
        max,
        min,
      });
    } else if (fields.length === 2) {
      stats.totals.set(name, fields[1]);
      stats.peaks.set(name, Math.max(fields[1], stats.peaks.get(name) ?? -Infinity));
    }
  }
  return stats;
}

/** Every error tsung counted (counters named error_…), by name. */
export function tsungErrors(stats: TsungStats): Map<string, number> {
  return new Map([...stats.totals].filter(([name, n]) => name.startsWith("error") && n > 0));
}

/**
 * Stamped chat messages received, counted in tsung.dump (dumptraffic): every stamp in a
 * received packet. tsung's own xmpp_msg_latency samples one stamp per packet read, so it
 * undercounts when several messages arrive in one read.
 */
export function stampsReceived(dump: string): number {
  let count = 0;
  for (const line of dump.split("\n")) {
    if (line.startsWith("Recv:")) count += line.match(/@@@\d+,\d+;\d+;\d+@@@/g)?.length ?? 0;
  }
  return count;
}
