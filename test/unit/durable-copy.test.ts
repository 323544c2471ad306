// The state a unit starts from (DurableCopy, connection.ts): what tells the packet processor
// whether a unit changed anything durable (then a snapshot is written) and what a failed unit
// is rolled back to. A change it missed would leave a snapshot stale for the next owner.
import assert from "node:assert/strict";
import {
  DurableCopy,
  newConnState,
  type ConnState,
} from "../../services/session/core/connection.js";

function boundConn(): ConnState {
  const conn = newConnState("e1.3.a", "e1", 3, 1000);
  Object.assign(conn, {
    stage: "bound",
    streamId: "s1",
    bareJid: "alice@localhost",
    resource: "phone",
    available: true,
    priority: 5,
    lastEntryId: "1700000000000-0",
  });
  return conn;
}

describe("DurableCopy", () => {
  it("sees no change when only the progress fields moved", () => {
    const conn = boundConn();
    const copy = DurableCopy.of(conn);
    conn.lastEntryId = "1700000000001-4";
    conn.lastActivityMs = 99999;
    assert.equal(copy.sameAs(conn), true);
  });

  it("sees a field changed, added or removed", () => {
    const changed = boundConn();
    const copy = DurableCopy.of(changed);
    changed.priority = 6;
    assert.equal(copy.sameAs(changed), false);

    const added = boundConn();
    const copyBeforeAdd = DurableCopy.of(added);
    added.boundBeforeClose = true;
    assert.equal(copyBeforeAdd.sameAs(added), false);

    const removed = boundConn();
    const copyBeforeRemove = DurableCopy.of(removed);
    delete removed.resource;
    assert.equal(copyBeforeRemove.sameAs(removed), false);
  });

  it("sees an object field set, and one changed in place", () => {
    const conn = boundConn();
    const copy = DurableCopy.of(conn);
    conn.ping = { id: "p1", sentAtMs: 5 };
    assert.equal(copy.sameAs(conn), false);

    // Now the state holds an object: its content is what counts.
    const withPing = DurableCopy.of(conn);
    assert.equal(withPing.sameAs(conn), true);
    conn.ping.sentAtMs = 6;
    assert.equal(withPing.sameAs(conn), false);
  });

  it("sees XEP-0198's counters move in place", () => {
    const conn = boundConn();
    conn.sm = { id: "3.abc", resume: true, handled: 4, sent: 7, acked: 5 };
    const copy = DurableCopy.of(conn);
    assert.equal(copy.sameAs(conn), true);
    conn.sm.sent++;
    assert.equal(copy.sameAs(conn), false);
    conn.sm.sent--;
    conn.sm.hibernateUntilMs = 10;
    assert.equal(copy.sameAs(conn), false);
  });

  it("keeps a state with deeper objects as JSON, and still sees what changed in them", () => {
    const conn = boundConn() as ConnState & { queue?: { items: string[] } };
    conn.queue = { items: ["a"] };
    const copy = DurableCopy.of(conn);
    assert.equal(copy.sameAs(conn), true);
    conn.queue.items.push("b");
    assert.equal(copy.sameAs(conn), false);
    assert.deepEqual((copy.restore("1-0", 0) as typeof conn).queue, { items: ["a"] });
  });

  it("restores a fresh state equal to the copy, with the given progress", () => {
    const withSm = {
      ...boundConn(),
      ping: { id: "p1", sentAtMs: 5 },
      sm: { id: "3.abc", resume: true, handled: 1, sent: 2, acked: 1 },
    };
    for (const conn of [boundConn(), withSm]) {
      const copy = DurableCopy.of(conn);
      const expected = structuredClone(conn);
      conn.priority = -1;
      conn.stage = "closed";
      if (conn.ping) conn.ping.id = "changed";
      if (conn.sm) conn.sm.sent = 99;
      const restored = copy.restore("1700000000002-0", 42);
      assert.notEqual(restored, conn);
      assert.deepEqual(restored, {
        ...expected,
        lastEntryId: "1700000000002-0",
        lastActivityMs: 42,
      });
    }
  });
});
