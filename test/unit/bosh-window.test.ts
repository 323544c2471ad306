// XEP-0124 §14.3: the rid window of a BOSH session (session/io/bosh/bosh-window.ts), and the
// timer deadline of a session (bosh-timers.ts), also after a takeover.
import assert from "node:assert/strict";
import type { ConnState } from "../../services/session/core/connection.js";
import type { BoshState } from "../../services/session/io/bosh/bosh-state.js";
import {
  continueAfterTakeover,
  nextBoshCheckMs,
} from "../../services/session/io/bosh/bosh-timers.js";
import type { BoshConn } from "../../services/session/io/bosh/bosh-output.js";
import { classifyRid, forgetAcknowledged } from "../../services/session/io/bosh/bosh-window.js";

function state(overrides: Partial<BoshState> = {}): BoshState {
  return {
    secret: "s",
    waitMs: 10000,
    hold: 1,
    requests: 2,
    ver: "1.11",
    rid: 100,
    held: [],
    sent: [],
    early: [],
    out: [],
    outBytes: 0,
    creating: false,
    lastRequestMs: 0,
    ...overrides,
  };
}

describe("BOSH rid window", () => {
  it("applies the next rid, keeps one ahead of a gap, refuses beyond the window", () => {
    const s = state();
    assert.equal(classifyRid(s, 101), "next");
    assert.equal(classifyRid(s, 102), "early");
    assert.equal(classifyRid(s, 103), "out-of-window");
    s.early.push({ rid: 102, body: "", edge: "e" });
    assert.equal(classifyRid(s, 102), "duplicate");
  });

  it("answers a repeated rid from what was sent, or holds it again if not answered yet", () => {
    const s = state({
      held: [{ rid: 100, edge: "e1", atMs: 0 }],
      sent: [{ rid: 99, body: "<body/>" }],
    });
    assert.equal(classifyRid(s, 100), "held");
    assert.equal(classifyRid(s, 99), "replay");
    assert.equal(classifyRid(s, 98), "out-of-window", "answered and no longer kept");
  });

  it("forgets what the client must have received (rid - requests, and its ack)", () => {
    const s = state({
      rid: 105,
      requests: 2,
      held: [
        { rid: 103, edge: "e", atMs: 0 },
        { rid: 104, edge: "e", atMs: 0 },
      ],
      sent: [
        { rid: 102, body: "a" },
        { rid: 104, body: "b" },
      ],
    });
    forgetAcknowledged(s, 105);
    assert.deepEqual(
      s.held.map((h) => h.rid),
      [104],
    );
    assert.deepEqual(
      s.sent.map((h) => h.rid),
      [104],
    );
    forgetAcknowledged(s, 106, 104);
    assert.deepEqual(s.held, []);
    assert.deepEqual(s.sent, []);
  });

  it("looks at a session at its oldest request's wait, or past its inactivity", () => {
    const conn = { bosh: state({ lastRequestMs: 1000 }) } as unknown as ConnState as BoshConn;
    assert.equal(nextBoshCheckMs(conn, 60000), 61001);
    conn.bosh.held.push({ rid: 101, edge: "e", atMs: 5000 });
    assert.equal(nextBoshCheckMs(conn, 60000), 15000);
  });

  it("counts the time a shard had no owner as activity, never as the client's silence", () => {
    // Stored 90 s ago; a member takes the shard over now: inactivity counts from now.
    const stale = { bosh: state({ lastRequestMs: 10000 }) } as unknown as ConnState as BoshConn;
    continueAfterTakeover(stale, 100000);
    assert.equal(nextBoshCheckMs(stale, 60000), 160001);
    // A request newer than the takeover keeps its own time.
    const fresh = { bosh: state({ lastRequestMs: 200000 }) } as unknown as ConnState as BoshConn;
    continueAfterTakeover(fresh, 100000);
    assert.equal(fresh.bosh.lastRequestMs, 200000);
    // Not a BOSH connection: nothing to do.
    const socket = {} as ConnState;
    continueAfterTakeover(socket, 100000);
    assert.deepEqual(socket, {});
  });
});
