// Where every stanza a test sent went (DESIGN.md's accounting rule): each id in exactly one
// outcome (delivered live, stored offline, bounced to its sender…), none unaccounted, none
// twice. The summary is the line the test prints.
import assert from "node:assert/strict";

export interface Accounting {
  unaccounted: string[];
  duplicates: number;
  /** "sent 20: delivered live 5, stored offline 15, bounced 0; unaccounted 0, duplicates 0" */
  summary: string;
  /** Every outcome's ids, in the order given. */
  outcomes: (string | undefined)[];
}

/** `outcomes`: each outcome's name ("delivered live") and the ids that had it. */
export function accountFor(
  sent: readonly string[],
  outcomes: Record<string, readonly (string | undefined)[]>,
): Accounting {
  const all = Object.values(outcomes).flat();
  const seen = new Set(all);
  const unaccounted = sent.filter((id) => !seen.has(id));
  const duplicates = all.length - seen.size;
  const parts = Object.entries(outcomes).map(([name, ids]) => `${name} ${ids.length}`);
  return {
    unaccounted,
    duplicates,
    outcomes: all,
    summary: `sent ${sent.length}: ${parts.join(", ")}; unaccounted ${unaccounted.length}, duplicates ${duplicates}`,
  };
}

/** Every stanza accounted for, once. */
export function assertAccounted(accounting: Accounting): void {
  assert.deepEqual(accounting.unaccounted, []);
  assert.equal(accounting.duplicates, 0, accounting.outcomes.join(" "));
}
