// The Membership contract: every implementation whose set changes (memory, redis, kubernetes)
// runs these same tests. Each test builds several members on one shared backend, as several
// session processes would; the settings are small (100 ms heartbeats, 400 ms expiry) so expiry
// is observable quickly. A backend without expiry (kubernetes: the kubelet, not a ttl, drops a
// dead pod) leaves out the tests about expiry and has its own tests for how members go.
// StaticMembership never changes and has its own unit test.
import assert from "node:assert/strict";
import { delay } from "../../services/shared/async/delay.js";
import type { Membership, MembershipOptions } from "../../services/shared/membership/membership.js";
import { until } from "../helpers/poll.js";

export interface MembershipFixture {
  /** A new, unjoined member on this test's backend (its own connection where there is one). */
  member(options: MembershipOptions): Membership;
  cleanup(): Promise<void>;
}

const OPTIONS: MembershipOptions = { heartbeatIntervalMs: 100, ttlMs: 400 };
/** Slack for a loaded machine on top of the bounds the interface promises. */
const SLACK_MS = 1500;

/** Records every set a member was notified of. */
function watch(m: Membership): string[][] {
  const seen: string[][] = [];
  m.onChange((members) => seen.push([...members]));
  return seen;
}

export interface MembershipContractOptions {
  /**
   * A member closed without leaving expires after ttlMs, and ttlMs must exceed the heartbeat
   * interval (the heartbeat backends). False where something else drops a dead member.
   */
  expires: boolean;
}

export function membershipContract(
  name: string,
  factory: () => Promise<MembershipFixture>,
  options: MembershipContractOptions = { expires: true },
): void {
  /** A test about expiry: registered only for a backend that expires members. */
  function itExpires(title: string, fn: Mocha.AsyncFunc | Mocha.Func): void {
    if (options.expires) it(title, fn);
  }

  describe(`Membership contract: ${name}`, function () {
    let fixture: MembershipFixture;
    let created: Membership[];
    beforeEach(async () => {
      fixture = await factory();
      created = [];
    });
    afterEach(async () => {
      await Promise.all(created.map((m) => m.close()));
      await fixture.cleanup();
    });

    function member(options = OPTIONS): Membership {
      const m = fixture.member(options);
      created.push(m);
      return m;
    }

    it("shows a joining member in its own view at once and in the others' views, notifying them", async () => {
      const a = member();
      const seenByA = watch(a);
      assert.deepEqual(a.members(), []);
      await a.join("a");
      assert.deepEqual(a.members(), ["a"]);
      const b = member();
      const seenByB = watch(b);
      await b.join("b");
      assert.deepEqual(b.members(), ["a", "b"]);
      assert.deepEqual(seenByB, [["a", "b"]]);
      await until(() => a.members().length === 2, "a to see b", OPTIONS.ttlMs + SLACK_MS);
      assert.deepEqual(a.members(), ["a", "b"]);
      assert.deepEqual(seenByA, [["a"], ["a", "b"]]);
    });

    it("keeps heartbeating members live well past the expiry, with no spurious notification", async () => {
      const a = member();
      const b = member();
      await a.join("a");
      await b.join("b");
      await until(() => a.members().length === 2, "a to see b", OPTIONS.ttlMs + SLACK_MS);
      const seen = watch(a);
      await delay(OPTIONS.ttlMs * 3);
      assert.deepEqual(a.members(), ["a", "b"]);
      assert.deepEqual(b.members(), ["a", "b"]);
      assert.deepEqual(seen, []);
    });

    it("lists members sorted and once each, however they joined", async () => {
      const ids = ["m-c", "m-a", "m-b"];
      const ms = ids.map(() => member());
      for (const [i, id] of ids.entries()) await ms[i].join(id);
      // A second process under an id that is still live (a restart with the same pod name).
      const again = member();
      await again.join("m-a");
      assert.deepEqual(again.members(), ["m-a", "m-b", "m-c"]);
      await until(
        () => ms.every((m) => m.members().length === 3),
        "every member to see all three",
        OPTIONS.ttlMs + SLACK_MS,
      );
      for (const m of ms) assert.deepEqual(m.members(), ["m-a", "m-b", "m-c"]);
    });

    it("removes a leaving member from the others' views within a heartbeat, not after the expiry", async () => {
      const a = member();
      const b = member();
      await a.join("a");
      await b.join("b");
      await until(() => a.members().length === 2, "a to see b", OPTIONS.ttlMs + SLACK_MS);
      const seenByA = watch(a);
      const seenByB = watch(b);
      const left = Date.now();
      await b.leave();
      assert.deepEqual(b.members(), []);
      assert.deepEqual(seenByB, [[]]);
      await until(() => a.members().length === 1, "a to see b gone", OPTIONS.ttlMs + SLACK_MS);
      const noticedMs = Date.now() - left;
      assert.deepEqual(a.members(), ["a"]);
      assert.deepEqual(seenByA, [["a"]]);
      // Would it only expire, a would need about ttlMs; leaving is seen at a's next heartbeat.
      assert.ok(noticedMs < OPTIONS.ttlMs, `noticed after ${noticedMs} ms`);
      // The leaver stopped heartbeating: it does not come back.
      await delay(OPTIONS.heartbeatIntervalMs * 3);
      assert.deepEqual(a.members(), ["a"]);
    });

    itExpires(
      "expires a member that stops heartbeating without leaving (a crash) within the ttl, and notifies",
      async () => {
        const a = member();
        const b = member();
        await a.join("a");
        await b.join("b");
        await until(() => a.members().length === 2, "a to see b", OPTIONS.ttlMs + SLACK_MS);
        const seenByA = watch(a);
        const stopped = Date.now();
        await b.close();
        assert.deepEqual(a.members(), ["a", "b"], "a closed member stays until it expires");
        await until(
          () => a.members().length === 1,
          "b to expire",
          OPTIONS.ttlMs + OPTIONS.heartbeatIntervalMs + SLACK_MS,
        );
        const goneMs = Date.now() - stopped;
        assert.deepEqual(seenByA, [["a"]]);
        // Its last renewal was at most one interval before it stopped.
        assert.ok(
          goneMs >= OPTIONS.ttlMs - OPTIONS.heartbeatIntervalMs - 20,
          `gone after ${goneMs} ms`,
        );
      },
    );

    itExpires("takes back a member that rejoins after it expired", async () => {
      const a = member();
      const b = member();
      await a.join("a");
      await b.join("b");
      await until(() => a.members().length === 2, "a to see b", OPTIONS.ttlMs + SLACK_MS);
      await b.close();
      await until(() => a.members().length === 1, "b to expire", OPTIONS.ttlMs * 2 + SLACK_MS);
      const seenByA = watch(a);
      const b2 = member();
      await b2.join("b");
      assert.deepEqual(b2.members(), ["a", "b"]);
      await until(() => a.members().length === 2, "a to see b back", OPTIONS.ttlMs + SLACK_MS);
      assert.deepEqual(seenByA, [["a", "b"]]);
    });

    it("stops notifying an unsubscribed listener", async () => {
      const a = member();
      const seen = watch(a);
      let late = 0;
      const unsubscribe = a.onChange(() => late++);
      unsubscribe();
      await a.join("a");
      assert.deepEqual(seen, [["a"]]);
      assert.equal(late, 0);
    });

    it("refuses an empty id and a second join", async () => {
      await assert.rejects(member().join(""));
      const a = member();
      await a.join("a");
      await assert.rejects(a.join("a2"));
      assert.deepEqual(a.members(), ["a"]);
    });

    itExpires(
      "refuses an expiry not above the heartbeat interval (a live member would lapse)",
      () => {
        assert.throws(() => member({ heartbeatIntervalMs: 400, ttlMs: 400 }), /must exceed/);
      },
    );
  });
}
