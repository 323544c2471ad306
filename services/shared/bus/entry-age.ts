// How old a stream entry is: stream ids start with the milliseconds of their XADD (Redis's
// clock; the in-process bus uses ours), so age needs no extra field. Across machines it also
// carries the clock difference between Redis and the reader, hence never below zero.

/** Seconds from entry `entryId`'s write to `nowMs` (a Date.now()), at least 0. */
export function entryAgeSeconds(entryId: string, nowMs: number): number {
  const writtenMs = Number(entryId.slice(0, entryId.indexOf("-")));
  return Number.isFinite(writtenMs) ? Math.max(0, nowMs - writtenMs) / 1000 : 0;
}
