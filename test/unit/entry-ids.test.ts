// Stream entry ids compare as the two numbers they hold (compareEntryIds): checked against
// BigInt arithmetic on the ids Redis gives and on the odd ones the code also compares.
import assert from "node:assert/strict";
import { compareEntryIds } from "../../services/shared/bus/packets.js";

/** The reference: "<ms>-<seq>" as two BigInts, a missing or empty part being 0. */
function reference(a: string, b: string): number {
  const parts = (id: string) => {
    const [ms, seq] = id.split("-");
    return [BigInt(ms || "0"), BigInt(seq || "0")];
  };
  const [am, as] = parts(a);
  const [bm, bs] = parts(b);
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

describe("compareEntryIds", () => {
  it("orders ids by time, then by sequence, as numbers rather than as text", () => {
    const cases: [string, string, number][] = [
      ["1700000000000-0", "1700000000000-0", 0],
      ["1700000000000-1", "1700000000000-0", 1],
      ["1700000000000-9", "1700000000000-10", -1],
      ["999-5", "1000-0", -1],
      ["0-0", "0-1", -1],
      ["1700000000001-0", "1700000000000-99", 1],
      // Past 2^53, where Number() would call these equal.
      ["1-18446744073709551615", "1-18446744073709551614", 1],
      // What the code also meets: no sequence, an empty id, leading zeros.
      ["5", "5-0", 0],
      ["", "0-0", 0],
      ["007-1", "7-1", 0],
      ["6", "5-7", 1],
    ];
    for (const [a, b, expected] of cases) {
      assert.equal(compareEntryIds(a, b), expected, `${a} vs ${b}`);
      assert.equal(compareEntryIds(b, a), -expected || 0, `${b} vs ${a}`);
    }
  });

  it("agrees with BigInt comparison on random ids", () => {
    const randomId = () =>
      `${Math.floor(Math.random() * 3) + 1700000000000}-${Math.floor(Math.random() * 120)}`;
    for (let i = 0; i < 5000; i++) {
      const a = randomId();
      const b = Math.random() < 0.1 ? a : randomId();
      assert.equal(compareEntryIds(a, b), reference(a, b), `${a} vs ${b}`);
    }
  });
});
