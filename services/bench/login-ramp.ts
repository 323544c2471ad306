// How a worker starts its logins. Open loop (no bound on logins in flight): login i starts at
// i / rate seconds however long the earlier ones take, which measures a rate honestly but, past
// the server's capacity, leaves a backlog in which every later login waits out its timeout
// (the 100,000-session ladder at 200 SCRAM logins/s: 95,159 timeouts). With a bound, a login
// also waits for a free slot: overload slows the ramp down instead of failing it.
import { monotonicMicros } from "./histogram.js";

export interface RampOptions {
  count: number;
  /** Arrivals per second at most. */
  ratePerSecond: number;
  /** Logins in flight at most; Infinity for open loop. */
  maxInFlight: number;
}

/** Starts `login(i)` for i in [0, count) as the options allow; resolves when all have settled. */
export async function rampLogins(
  options: RampOptions,
  login: (i: number) => Promise<void>,
): Promise<{ elapsedMs: number; mostInFlight: number }> {
  const started = monotonicMicros();
  const settled: Promise<void>[] = [];
  let inFlight = 0;
  let mostInFlight = 0;
  let slotFreed: (() => void) | undefined;
  // `login` records its own failures; one that throws is a bench bug, reported once all settled.
  let bug: unknown;
  for (let i = 0; i < options.count; i++) {
    const due = started + (i / options.ratePerSecond) * 1e6;
    const wait = (due - monotonicMicros()) / 1000;
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    while (inFlight >= options.maxInFlight) await new Promise<void>((r) => (slotFreed = r));
    inFlight++;
    mostInFlight = Math.max(mostInFlight, inFlight);
    settled.push(
      login(i)
        .catch((err: unknown) => {
          bug ??= err;
        })
        .finally(() => {
          inFlight--;
          const wake = slotFreed;
          slotFreed = undefined;
          wake?.();
        }),
    );
  }
  await Promise.all(settled);
  if (bug !== undefined) throw bug;
  return { elapsedMs: (monotonicMicros() - started) / 1000, mostInFlight };
}
