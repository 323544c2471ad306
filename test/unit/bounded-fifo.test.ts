// The FIFO gate in front of PBKDF2 (services/shared/async/bounded-fifo.ts): concurrency,
// arrival order, and refusal only past the bound on waiters.
import { strict as assert } from "node:assert";
import { BoundedFifo } from "../../services/shared/async/bounded-fifo.js";

/** A task that runs until the test finishes it. */
function gated(log: string[], name: string) {
  let finish = () => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  const task = async () => {
    log.push(`start ${name}`);
    await done;
    log.push(`end ${name}`);
    return name;
  };
  return { task, finish: () => finish() };
}

/** Lets every pending promise callback run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("BoundedFifo", () => {
  it("runs at most `concurrency` tasks at once and starts the others in arrival order", async () => {
    const fifo = new BoundedFifo(2);
    const log: string[] = [];
    const tasks = ["a", "b", "c", "d", "e"].map((name) => gated(log, name));
    const results = tasks.map((t) => fifo.tryRun(t.task, 10));
    await settle();
    assert.deepEqual(log, ["start a", "start b"]);
    assert.equal(fifo.active, 2);
    assert.equal(fifo.queued, 3);

    tasks[1]?.finish();
    await settle();
    assert.deepEqual(log.slice(2), ["end b", "start c"]);
    // A task arriving now waits behind those already in line, though a slot was just freed.
    const late = gated(log, "late");
    const lateResult = fifo.tryRun(late.task, 10);
    tasks[0]?.finish();
    await settle();
    assert.deepEqual(log.slice(4), ["end a", "start d"]);
    for (const t of [...tasks, late]) t.finish();
    assert.deepEqual(await Promise.all([...results, lateResult]), [
      "a",
      "b",
      "c",
      "d",
      "e",
      "late",
    ]);
    assert.deepEqual(
      log.filter((line) => line.startsWith("start")),
      ["start a", "start b", "start c", "start d", "start e", "start late"],
    );
    assert.equal(fifo.active, 0);
    assert.equal(fifo.queued, 0);
  });

  it("refuses only when every slot is busy and `maxQueued` tasks wait", async () => {
    const fifo = new BoundedFifo(1);
    const log: string[] = [];
    const running = gated(log, "running");
    const waiting = gated(log, "waiting");
    const first = fifo.tryRun(running.task, 1);
    const second = fifo.tryRun(waiting.task, 1);
    assert.ok(first && second);
    assert.equal(fifo.tryRun(gated(log, "refused").task, 1), undefined);
    assert.equal(fifo.queued, 1);
    running.finish();
    waiting.finish();
    await Promise.all([first, second]);
    assert.ok(!log.includes("start refused"), "a refused task never runs");
    // With the line empty again, work is taken; a bound of 0 still runs what has a free slot.
    assert.equal(await fifo.tryRun(async () => "again", 0), "again");
  });

  it("frees the slot of a task that fails", async () => {
    const fifo = new BoundedFifo(1);
    await assert.rejects(
      fifo.tryRun(async () => {
        throw new Error("boom");
      }, 0) ?? Promise.resolve(),
      /boom/,
    );
    assert.equal(fifo.active, 0);
    assert.equal(await fifo.tryRun(async () => 1, 0), 1);
  });
});
