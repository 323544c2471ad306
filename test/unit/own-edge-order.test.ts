// When a node's member may hand a packet to its own edge in process (own-edge-order.ts): only
// for a served shard once the edge read past the inbox end of the takeover, and for a
// connection only once the edge read past the member's own writes for it through the inbox.
import assert from "node:assert/strict";
import { OwnEdgeOrder } from "../../services/shared/bus/own-edge-order.js";

describe("OwnEdgeOrder", () => {
  let order: OwnEdgeOrder;
  beforeEach(() => (order = new OwnEdgeOrder()));

  /** A write through the inbox that resolves when `finish` is called. */
  function pendingWrite(connId: string) {
    let finish!: (id: string | null) => void;
    let fail!: (err: Error) => void;
    const done = order.viaInbox(
      [connId],
      () =>
        new Promise<string | null>((resolve, reject) => {
          finish = resolve;
          fail = reject;
        }),
    );
    return { done, finish: (id: string | null) => finish(id), fail: (err: Error) => fail(err) };
  }

  it("allows nothing for a shard it does not serve, nor for a malformed connection id", () => {
    assert.equal(order.allows("e1.2.1"), false);
    order.started(2, "0-0");
    assert.equal(order.allows("e1.2.1"), true);
    assert.equal(order.allows("e1.3.1"), false);
    assert.equal(order.allows("not-a-connection"), false);
    order.stopped(2);
    assert.equal(order.allows("e1.2.1"), false);
  });

  it("bars a taken shard until the edge has read past the inbox end of the takeover", () => {
    order.read("10-0");
    order.started(2, "12-0"); // the previous owner wrote up to 12-0
    assert.equal(order.allows("e1.2.1"), false);
    order.read("11-0");
    assert.equal(order.allows("e1.2.1"), false);
    order.read("12-0");
    assert.equal(order.allows("e1.2.1"), true);
  });

  it("bars a connection while its own write through the inbox is in flight or unread", async () => {
    order.started(2, "0-0");
    const write = pendingWrite("e1.2.1");
    assert.equal(order.allows("e1.2.1"), false, "in flight");
    assert.equal(order.allows("e1.2.2"), true, "another connection is not held");
    write.finish("20-1");
    assert.equal(await write.done, "20-1");
    assert.equal(order.allows("e1.2.1"), false, "stored, not read yet");
    order.read("20-0");
    assert.equal(order.allows("e1.2.1"), false);
    order.read("20-1");
    assert.equal(order.allows("e1.2.1"), true);
    assert.equal(order.unreadConnections, 0, "forgotten once read");
  });

  it("keeps a connection barred after a failed write until a later one is stored and read", async () => {
    order.started(2, "0-0");
    const failed = pendingWrite("e1.2.1");
    failed.fail(new Error("connection lost"));
    await assert.rejects(failed.done, /connection lost/);
    order.read("99-0");
    assert.equal(order.allows("e1.2.1"), false, "stored or not, its id is unknown");
    const next = pendingWrite("e1.2.1");
    next.finish("100-0");
    await next.done;
    assert.equal(order.allows("e1.2.1"), false);
    order.read("100-0");
    assert.equal(order.allows("e1.2.1"), true);
  });

  it("bars a connection resuming another shard's session until its rename is read or it is gone", () => {
    order.started(2, "0-0");
    order.resuming("e1.2.1");
    order.read("50-0");
    assert.equal(order.allows("e1.2.1"), false, "the other member's rename may be unread");
    order.forget("e1.2.1"); // the edge read the rename
    assert.equal(order.allows("e1.2.1"), true);
    assert.equal(order.unreadConnections, 0);
  });

  it("lifts a resuming connection's bar when its resume is refused (no rename comes)", () => {
    order.started(2, "0-0");
    order.resuming("e1.2.1");
    assert.equal(order.allows("e1.2.1"), false);
    order.resumeRefused("e1.2.1");
    assert.equal(order.allows("e1.2.1"), true);
    order.read("1-0");
    assert.equal(order.unreadConnections, 0);
  });

  it("holds a renamed connection's new id behind the rename", async () => {
    order.started(2, "0-0");
    order.started(5, "0-0");
    const done = order.viaInbox(["e1.2.1", "e1.5.9"], async () => "30-0");
    assert.equal(order.allows("e1.5.9"), false, "the new id waits for the rename too");
    await done;
    order.read("29-0");
    assert.equal(order.allows("e1.5.9"), false);
    order.read("30-0");
    assert.equal(order.allows("e1.5.9"), true);
    assert.equal(order.allows("e1.2.1"), true);
  });

  it("forgets a gone socket's connection, keeping a write under way until its id is known", async () => {
    order.started(2, "0-0");
    const failed = order.viaInbox(["e1.2.1"], () => Promise.reject(new Error("lost")));
    await assert.rejects(failed, /lost/);
    assert.equal(order.unreadConnections, 1, "kept: its id is unknown");
    order.forget("e1.2.1");
    assert.equal(order.unreadConnections, 0, "its socket is gone: nothing to overtake");
    const write = pendingWrite("e1.2.2");
    order.forget("e1.2.2");
    assert.equal(order.allows("e1.2.2"), false, "the write under way still counts");
    write.finish("40-0");
    await write.done;
    assert.equal(order.unreadConnections, 0, "dropped once its write is answered");
    // The same when that write fails: nothing will ever clear it otherwise.
    const failing = pendingWrite("e1.2.3");
    order.forget("e1.2.3");
    failing.fail(new Error("lost"));
    await assert.rejects(failing.done, /lost/);
    assert.equal(order.unreadConnections, 0);
  });

  it("needs no read for a write that found no inbox (the edge is gone)", async () => {
    order.started(2, "0-0");
    const write = pendingWrite("e1.2.1");
    write.finish(null);
    assert.equal(await write.done, null);
    assert.equal(order.allows("e1.2.1"), true);
  });
});
