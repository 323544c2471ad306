// How the bench holds its idle sessions and ramps its logins, with no server: the keepalive
// schedule (every held client once per interval, spread evenly) and the login ramp (a bound on
// logins in flight slows arrivals down instead of piling them up).
import assert from "node:assert/strict";
import { KeepaliveSchedule } from "../../services/bench/keepalive-schedule.js";
import { rampLogins } from "../../services/bench/login-ramp.js";
import { streamErrorCondition } from "../../services/client/ws-xmpp-client.js";

describe("bench ramp and keepalives", () => {
  it("sends every client one keepalive per interval, evenly over its ticks", () => {
    const schedule = new KeepaliveSchedule(10000, 0);
    const sent = new Array<number>(1000).fill(0);
    const perTick: number[] = [];
    for (let t = 1000; t <= 10000; t += 1000) {
      const due = schedule.due(1000, t);
      perTick.push(due.length);
      for (const i of due) sent[i]++;
    }
    console.log(`      keepalives per 1 s tick, 1,000 clients every 10 s: ${perTick.join(" ")}`);
    assert.deepEqual(perTick, new Array<number>(10).fill(100));
    assert.ok(
      sent.every((n) => n === 1),
      "each client exactly once",
    );
  });

  it("catches up after a late tick but never sends a client two at once", () => {
    const schedule = new KeepaliveSchedule(10000, 0);
    assert.equal(schedule.due(1000, 5000).length, 500, "a tick 5 s late sends 5 s worth");
    const burst = schedule.due(1000, 60000);
    assert.equal(burst.length, 1000, "a minute late: one round, not six");
    assert.equal(new Set(burst).size, 1000);
    assert.deepEqual(schedule.due(0, 61000), []);
    assert.throws(() => new KeepaliveSchedule(0, 0), /positive/);
  });

  it("keeps logins in flight under the bound, and starts them all", async () => {
    let inFlight = 0;
    let most = 0;
    const started: number[] = [];
    const pending: (() => void)[] = [];
    const ramp = rampLogins({ count: 20, ratePerSecond: 10000, maxInFlight: 3 }, (i) => {
      started.push(i);
      inFlight++;
      most = Math.max(most, inFlight);
      return new Promise<void>((resolve) =>
        pending.push(() => {
          inFlight--;
          resolve();
        }),
      );
    });
    // Each login finishes only when this loop lets it: the ramp must wait for a slot each time.
    while (started.length < 20 || pending.length > 0) {
      await new Promise((r) => setTimeout(r, 1));
      pending.shift()?.();
    }
    const { mostInFlight } = await ramp;
    console.log(`      20 logins, bound 3: most in flight ${most} (ramp says ${mostInFlight})`);
    assert.equal(most, 3);
    assert.equal(mostInFlight, 3);
    assert.deepEqual(
      started,
      Array.from({ length: 20 }, (_, i) => i),
    );
  });

  it("open loop: every arrival starts on schedule however slow the logins are", async () => {
    const resolvers: (() => void)[] = [];
    const ramp = rampLogins({ count: 50, ratePerSecond: 5000, maxInFlight: Infinity }, () => {
      return new Promise<void>((resolve) => resolvers.push(resolve));
    });
    while (resolvers.length < 50) await new Promise((r) => setTimeout(r, 1));
    for (const resolve of resolvers) resolve();
    const { mostInFlight } = await ramp;
    assert.equal(mostInFlight, 50);
  });

  it("a failing login still frees its slot", async () => {
    let calls = 0;
    const ramp = rampLogins({ count: 5, ratePerSecond: 10000, maxInFlight: 1 }, () => {
      calls++;
      return Promise.reject(new Error("bench bug"));
    });
    await assert.rejects(ramp, /bench bug/);
    assert.equal(calls, 5);
  });

  it("names a dropped client's stream error by its condition and text", () => {
    const ns = "urn:ietf:params:xml:ns:xmpp-streams";
    assert.equal(
      streamErrorCondition(
        `<stream:error xmlns:stream="http://etherx.jabber.org/streams"><connection-timeout xmlns="${ns}"/><text xmlns="${ns}">idle for too long</text></stream:error>`,
      ),
      "connection-timeout (idle for too long)",
    );
    assert.equal(
      streamErrorCondition(
        `<stream:error xmlns:stream="http://etherx.jabber.org/streams"><system-shutdown xmlns="${ns}"/></stream:error>`,
      ),
      "system-shutdown",
    );
    assert.equal(
      streamErrorCondition(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`),
      "close",
    );
  });
});
