// Deadlines by key on a wheel of `tickMs` slots: scheduling, rescheduling and cancelling cost
// O(1), and taking what is due costs O(due + slots passed), never O(everything scheduled).
// One deadline per key; a later schedule() replaces the earlier one.

export class DeadlineWheel {
  /** Keys by slot (deadline rounded up to a tick). */
  private readonly slots = new Map<number, Set<string>>();
  private readonly slotOf = new Map<string, number>();
  /** Every slot up to this one has been taken. */
  private lastTakenSlot: number;

  constructor(
    private readonly tickMs: number,
    startMs: number,
  ) {
    this.lastTakenSlot = Math.floor(startMs / tickMs) - 1;
  }

  get size(): number {
    return this.slotOf.size;
  }

  /** `key` is due once the clock reaches `dueMs` (at the first due() from then on). */
  schedule(key: string, dueMs: number): void {
    this.cancel(key);
    // A deadline already passed goes in the next slot to be taken.
    const slot = Math.max(Math.ceil(dueMs / this.tickMs), this.lastTakenSlot + 1);
    let keys = this.slots.get(slot);
    if (!keys) this.slots.set(slot, (keys = new Set()));
    keys.add(key);
    this.slotOf.set(key, slot);
  }

  cancel(key: string): void {
    const slot = this.slotOf.get(key);
    if (slot === undefined) return;
    this.slotOf.delete(key);
    const keys = this.slots.get(slot);
    keys?.delete(key);
    if (keys?.size === 0) this.slots.delete(slot);
  }

  /** Removes and returns every key whose deadline is at or before `nowMs`. */
  takeDue(nowMs: number): string[] {
    const due: string[] = [];
    const upTo = Math.floor(nowMs / this.tickMs);
    // Walks slots one by one while that is cheaper than looking at every occupied slot.
    if (upTo - this.lastTakenSlot <= this.slots.size) {
      for (let slot = this.lastTakenSlot + 1; slot <= upTo; slot++) this.takeSlot(slot, due);
    } else {
      for (const slot of [...this.slots.keys()]) if (slot <= upTo) this.takeSlot(slot, due);
    }
    this.lastTakenSlot = Math.max(this.lastTakenSlot, upTo);
    return due;
  }

  private takeSlot(slot: number, into: string[]): void {
    const keys = this.slots.get(slot);
    if (!keys) return;
    this.slots.delete(slot);
    for (const key of keys) {
      this.slotOf.delete(key);
      into.push(key);
    }
  }
}
