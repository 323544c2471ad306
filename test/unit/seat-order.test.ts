import assert from "node:assert/strict";
import { shuffled } from "../../services/bench/seat-order.js";

describe("bench: the clients' sending order", () => {
  it("is a permutation of the clients, the same in every run, with neighbours apart", () => {
    const seats = Array.from({ length: 1000 }, (_, i) => i);
    const order = shuffled(seats);
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      seats,
      "every client once",
    );
    assert.deepEqual(shuffled(seats), order, "the same order again");
    // In seat order every client's recipient (n + 1) sends right after it; shuffled, few do.
    const nextSendsNext = order.filter((seat, i) => order[i + 1] === seat + 1).length;
    assert.ok(nextSendsNext < 10, `${nextSendsNext} clients followed by their recipient`);
  });
});
