// The gradual drain's schedule (edge/drain.ts): a delay, then even slices over the window, one
// timer per slice; clients that leave early shrink the later slices; a hurry or the end of the
// grace closes the rest at once. Real timers over a plain Map standing in for the registry.
import assert from "node:assert/strict";
import {
  DRAIN_SLICE_INTERVAL_MS,
  drainSliceCount,
  drainSockets,
  type DrainDeps,
} from "../../services/edge/drain.js";
import { silentLogger } from "../../services/shared/log.js";

interface FakeSocket {
  id: number;
  closing: boolean;
}

/** N open sockets keyed by id, and when each was closed (ms after `startedAt`). */
class Sockets {
  readonly open = new Map<number, FakeSocket>();
  readonly closedAt = new Map<number, number>();
  readonly startedAt = Date.now();

  constructor(n: number) {
    for (let id = 0; id < n; id++) this.open.set(id, { id, closing: false });
  }

  deps(overrides: Partial<DrainDeps<FakeSocket>> = {}): DrainDeps<FakeSocket> {
    return {
      open: this.open,
      close: (socket) => {
        if (socket.closing) return false;
        // As uWS does: the close handler runs inside end() and the registry forgets the socket.
        this.open.delete(socket.id);
        this.closedAt.set(socket.id, Date.now() - this.startedAt);
        return true;
      },
      delayMs: 50,
      windowMs: 500,
      deadlineMs: Date.now() + 10000,
      hurry: new AbortController().signal,
      log: silentLogger,
      ...overrides,
    };
  }

  times(): number[] {
    return [...this.closedAt.values()].sort((a, b) => a - b);
  }
}

describe("edge drain schedule", () => {
  it("cuts a window into one slice per interval, at least one and at most the bound", () => {
    assert.equal(drainSliceCount(0), 1);
    assert.equal(drainSliceCount(DRAIN_SLICE_INTERVAL_MS - 1), 1);
    assert.equal(drainSliceCount(10 * DRAIN_SLICE_INTERVAL_MS), 10);
    assert.equal(drainSliceCount(600000), 1000);
  });

  it("waits the delay, then closes even slices spread over the window", async () => {
    const sockets = new Sockets(20);
    const result = await drainSockets(sockets.deps());
    const times = sockets.times();
    console.log(`      slices ${result.slices.join(",")}; closes at ${times.join(",")} ms`);
    assert.deepEqual(result.slices, [4, 4, 4, 4, 4]);
    assert.equal(result.closed, 20);
    assert.equal(result.cut, undefined);
    assert.equal(result.atOnce, 0);
    assert.equal(sockets.open.size, 0);
    assert.ok(times[0] >= 45, `first close at ${times[0]} ms, before the delay`);
    // Five slices 100 ms apart: the first and the last are 400 ms apart.
    assert.ok(times[19] - times[0] >= 350, `closes span ${times[19] - times[0]} ms`);
    for (let i = 4; i < 20; i += 4)
      assert.ok(times[i] - times[i - 1] >= 50, `slices ${i / 4 - 1} and ${i / 4} bunched`);
  });

  it("does not wait the delay when no socket is open", async () => {
    const sockets = new Sockets(0);
    const result = await drainSockets(sockets.deps({ delayMs: 5000, windowMs: 5000 }));
    assert.ok(Date.now() - sockets.startedAt < 200);
    assert.deepEqual(result, { closed: 0, slices: [], atOnce: 0 });
  });

  it("counts only what it closed: clients that leave early shrink the later slices", async () => {
    const sockets = new Sockets(20);
    const drained = drainSockets(sockets.deps({ delayMs: 100 }));
    // Eight leave by themselves during the delay; one more is already closing.
    for (let id = 0; id < 8; id++) sockets.open.delete(id);
    (sockets.open.get(8) as FakeSocket).closing = true;
    const result = await drained;
    console.log(`      slices ${result.slices.join(",")}`);
    assert.equal(result.closed, 11);
    assert.equal(result.atOnce, 0);
    assert.equal(result.slices.length, 5);
    assert.ok(Math.max(...result.slices) <= 3, result.slices.join(","));
    assert.deepEqual([...sockets.open.keys()], [8]);
  });

  it("closes the rest at once when hurried (a second SIGTERM)", async () => {
    const sockets = new Sockets(30);
    const hurry = new AbortController();
    const drained = drainSockets(sockets.deps({ windowMs: 3000, hurry: hurry.signal }));
    while (sockets.closedAt.size === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const hurriedAt = Date.now() - sockets.startedAt;
    hurry.abort();
    const result = await drained;
    assert.equal(result.cut, "hurried");
    assert.equal(result.closed, 30);
    assert.deepEqual(result.slices, [1]);
    assert.equal(result.atOnce, 29);
    assert.ok(sockets.times()[29] - hurriedAt < 50, "the rest closed at once");
  });

  it("closes the rest at once when the grace runs out", async () => {
    const sockets = new Sockets(30);
    const deadlineMs = Date.now() + 300;
    const result = await drainSockets(sockets.deps({ windowMs: 3000, deadlineMs }));
    const times = sockets.times();
    assert.equal(result.cut, "grace");
    assert.equal(result.closed, 30);
    // Slices of one every 100 ms from 50 ms: three before the 300 ms deadline on time; a loaded
    // machine fires timers late, so a fourth may come first. Either way the window (3 s) is cut
    // short and the rest go at once.
    assert.ok(times[29] >= 290 && times[29] < 1000, `last close at ${times[29]} ms`);
    assert.ok(result.slices.length >= 1 && result.slices.length <= 4, `${result.slices}`);
    assert.ok(
      result.slices.every((n) => n === 1),
      `${result.slices}`,
    );
    assert.equal(result.atOnce, 30 - result.slices.length);
  });
});
