// Round-trip times of Redis calls, by logical command (megaphone_redis_command_duration_seconds).
// Timed where the bus and the hot stores issue them, once per logical command (a script is
// "eval", a MULTI…EXEC "multi"), not in every ioredis call. Blocking reads (XREAD/XREADGROUP
// with BLOCK) are not timed: their duration is the wait for entries, not a round trip.
// One timer per backend; the edge and session registries of the process register its histogram.
import { unregisteredHistogram } from "../metrics.js";

/**
 * 0.1 ms … ~1.6 s: a pipelined command on a quiet local Redis answers in well under a
 * millisecond, so the low buckets must be fine to see it grow.
 */
export const REDIS_COMMAND_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

export class RedisCommandTimer {
  /** Not in any registry until a tier registers it (MetricsRegistry.register). */
  readonly histogram = unregisteredHistogram(
    "megaphone_redis_command_duration_seconds",
    "Round trip of Redis calls by logical command (a Lua script is eval, a transaction multi), failed ones included; blocking reads are not timed.",
    REDIS_COMMAND_BUCKETS_SECONDS,
    ["command"],
  );

  /** Runs `call` (one Redis command) and records how long its answer took, failed or not. */
  async time<T>(command: string, call: () => Promise<T>): Promise<T> {
    const end = this.histogram.startTimer({ command });
    try {
      return await call();
    } finally {
      end();
    }
  }
}

/** For stores and buses built without one (unit and contract tests): times nothing. */
export const UNTIMED: Pick<RedisCommandTimer, "time"> = { time: (_command, call) => call() };

export type CommandTimer = Pick<RedisCommandTimer, "time">;
