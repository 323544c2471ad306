// The order in which the load generator's clients take their turns to send (worker.ts).
/**
 * `seats` in a shuffled order, the same in every run (a fixed seed: runs stay comparable).
 * Fisher–Yates with mulberry32.
 */
export function shuffled<T>(seats: readonly T[]): T[] {
  let state = 0x9e3779b9;
  const random = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const order = [...seats];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
