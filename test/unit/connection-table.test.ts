// ConnectionTable's turns: one chain of work per connection (withConn), and tryHold, which
// takes a free turn at once or not at all (a unit holding another connection's turn to deliver
// to it, live-context.ts holdForDelivery, must never wait for it).
import assert from "node:assert/strict";
import { ConnectionTable } from "../../services/session/io/connection-table.js";

/** A promise with its resolve at hand. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("ConnectionTable turns", () => {
  it("tryHold takes a free turn, and work queued meanwhile runs only once it is released", async () => {
    const table = new ConnectionTable();
    const release = table.tryHold("c1");
    assert.ok(release, "a free turn is taken");
    const ran: string[] = [];
    const queued = table.withConn("c1", async () => void ran.push("queued"));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(ran, [], "waits for the hold");
    release();
    await queued;
    assert.deepEqual(ran, ["queued"]);
  });

  it("tryHold takes nothing while work for the connection is queued or running", async () => {
    const table = new ConnectionTable();
    const running = deferred();
    const work = table.withConn("c1", () => running.promise);
    assert.equal(table.tryHold("c1"), undefined, "busy: nothing taken");
    assert.ok(table.tryHold("c2"), "another connection's turn is free");
    running.resolve();
    await work;
    // The chain's end is noticed a turn of the event loop later.
    await new Promise((r) => setImmediate(r));
    const release = table.tryHold("c1");
    assert.ok(release, "free again once the work is done");
    assert.equal(table.tryHold("c1"), undefined, "held: not taken twice");
    release();
  });
});
