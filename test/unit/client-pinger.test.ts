// The client pinger's schedule (XEP-0199 pings, authTimeoutMs): a tick takes only the
// connections that are due, and a connection is never looked at later than it needs.
import assert from "node:assert/strict";
import { newConnState, type ConnState } from "../../services/session/core/connection.js";
import {
  PingSchedule,
  nextCheckMs,
  type PingTimeouts,
} from "../../services/session/io/client-pinger.js";
import { DeadlineWheel } from "../../services/session/io/deadline-wheel.js";

const TIMEOUTS: PingTimeouts = {
  clientPingIntervalMs: 120000,
  clientPingTimeoutMs: 30000,
  authTimeoutMs: 30000,
};
const TICK_MS = 1000;

function bound(connId: string, lastActivityMs: number): ConnState {
  return {
    ...newConnState(connId, "e1", 0, 0),
    stage: "bound",
    bareJid: "u@localhost",
    resource: "r",
    lastActivityMs,
  };
}

describe("client pinger schedule", () => {
  it("takes only due connections: a tick costs what is due, not every connection", () => {
    const start = 1_000_000;
    const schedule = new PingSchedule(TIMEOUTS, TICK_MS, start);
    // 10,000 bound connections, last active one every 12 ms over the last interval.
    const conns = Array.from({ length: 10000 }, (_, i) => bound(`c${i}`, start - 120000 + i * 12));
    for (const conn of conns) schedule.reschedule(conn, start - 120000);
    let visited = 0;
    for (let now = start; now <= start + 120000; now += TICK_MS) {
      const due = schedule.takeDue(now);
      visited += due.length;
      // Each connection whose ping is due by now, and only those (a tick is at most late).
      for (const id of due) {
        const conn = conns[Number(id.slice(1))];
        assert.ok(conn.lastActivityMs + TIMEOUTS.clientPingIntervalMs <= now, id);
        assert.ok(conn.lastActivityMs + TIMEOUTS.clientPingIntervalMs > now - TICK_MS, id);
      }
      assert.ok(due.length <= Math.ceil(TICK_MS / 12) + 1, `${due.length} in one tick`);
    }
    // Every connection exactly once over one interval; the old sweep visited 10,000 per tick.
    assert.equal(visited, conns.length);
    assert.equal(schedule.size, 0);
  });

  it("looks again after activity instead of pinging, and watches new connections at once", () => {
    const schedule = new PingSchedule(TIMEOUTS, TICK_MS, 0);
    const conn = bound("c1", 0);
    schedule.reschedule(conn, 0);
    assert.deepEqual(schedule.takeDue(119000), []);
    conn.lastActivityMs = 100000; // the client spoke meanwhile
    assert.deepEqual(schedule.takeDue(120000), ["c1"]);
    schedule.reschedule(conn, 120000);
    assert.deepEqual(schedule.takeDue(219000), []);
    assert.deepEqual(schedule.takeDue(220000), ["c1"]);
    schedule.watch("c2");
    assert.deepEqual(schedule.takeDue(221000), ["c2"]);
  });

  it("never schedules a connection later than any deadline it may reach", () => {
    const unbound = newConnState("c1", "e1", 0, 5000);
    // Unbound: the auth deadline, or the first ping if it binds at once and the interval is shorter.
    assert.equal(nextCheckMs(unbound, TIMEOUTS), 5000 + 30000 + 1);
    assert.equal(nextCheckMs(unbound, { ...TIMEOUTS, clientPingIntervalMs: 2000 }), 7000);
    // Pinged: the ping timeout, or the next ping if the answer comes at once.
    const pinged = { ...bound("c2", 0), ping: { id: "p", sentAtMs: 200000 } };
    assert.equal(nextCheckMs(pinged, TIMEOUTS), 200000 + 30000 + 1);
    assert.equal(nextCheckMs(pinged, { ...TIMEOUTS, clientPingIntervalMs: 10000 }), 210000);
    // A visit never reschedules into the past (no spinning on an overdue connection).
    const schedule = new PingSchedule(TIMEOUTS, TICK_MS, 500000);
    schedule.reschedule(bound("c3", 0), 500000);
    assert.deepEqual(schedule.takeDue(500000), []);
    assert.deepEqual(schedule.takeDue(501000), ["c3"]);
  });

  it("wheel: replaces, cancels, and catches up after a long pause", () => {
    const wheel = new DeadlineWheel(100, 0);
    wheel.schedule("a", 250);
    wheel.schedule("b", 250);
    wheel.schedule("a", 950);
    wheel.cancel("b");
    assert.deepEqual(wheel.takeDue(900), []);
    wheel.schedule("c", 1_000_000);
    assert.deepEqual(wheel.takeDue(10_000_000), ["a", "c"]);
    assert.equal(wheel.size, 0);
  });
});
