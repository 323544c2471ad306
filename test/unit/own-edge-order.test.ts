// When a node's member may hand a packet to its own edge in process (own-edge-order.ts): only
// for a served shard once the edge read past the inbox end of the takeover, and for a
// connection only once the edge read past the member's own writes for it through the inbox;
// for a connection other members may write to two-hop, only once the edge read past the inbox
// end of every takeover and of every batch holding other members' packets.
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

  it("bars a two-hop target of any served shard after a takeover, other connections not", () => {
    // A sender's shard moving here: its previous owner's two-hop writes reach any target.
    order.started(1, "0-0");
    order.mayTwoHop("e1.1.1");
    order.read("10-0");
    assert.equal(order.allows("e1.1.1"), true);
    order.started(2, "12-0");
    assert.equal(order.allows("e1.1.1"), false, "a two-hop target of shard 1");
    assert.equal(order.allows("e1.1.2"), true, "no two-hop writes can be waiting for it");
    order.read("12-0");
    assert.equal(order.allows("e1.1.1"), true);
    assert.equal(order.allows("e1.2.1"), true);
  });

  it("bars two-hop targets while a foreign batch's inbox end is read, then until it is read past", async () => {
    order.started(1, "0-0");
    order.mayTwoHop("e1.1.1");
    order.read("10-0");
    let answer!: (end: string) => void;
    const done = order.foreignBatch(() => new Promise<string>((resolve) => (answer = resolve)));
    assert.equal(order.allows("e1.1.1"), false, "end not known yet");
    assert.equal(order.allows("e1.1.2"), true, "not a two-hop target");
    answer("15-0");
    await done;
    assert.equal(order.allows("e1.1.1"), false, "end known, not read past");
    order.read("15-0");
    assert.equal(order.allows("e1.1.1"), true);
    // An older end changes nothing.
    await order.foreignBatch(async () => "14-0");
    assert.equal(order.allows("e1.1.1"), true);
  });

  it("keeps the bar of a foreign batch whose end read fails", async () => {
    order.started(1, "0-0");
    order.mayTwoHop("e1.1.1");
    await assert.rejects(
      order.foreignBatch(async () => {
        throw new Error("redis down");
      }),
    );
    // The bus tries again until it answers; were it to give up, nothing may go over in process.
    assert.equal(order.allows("e1.1.1"), false);
  });

  it("forgets a two-hop target with its socket or its shard", async () => {
    order.started(1, "0-0");
    order.mayTwoHop("e1.1.1");
    order.mayTwoHop("e1.1.2");
    assert.equal(order.hasTwoHopTargets, true);
    order.forget("e1.1.1");
    order.stopped(1);
    assert.equal(order.hasTwoHopTargets, false);
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
