// ShardOwnership with the in-process membership and leases (the real ones, on a shared
// registry, as several processes would share Redis) and a host that records what it was asked
// to do. What is checked: members split the shards by rendezvous and never hold one at once; a
// join hands shards over only after the old owner's host stopped them (planned); a lease lost or
// a refused write stops the shard at once (not planned); a fixed list (--shards) given to two
// members leaves the second waiting until the first is gone.
import assert from "node:assert/strict";
import { MemoryShardLeases } from "../../services/shared/leases/memory-shard-leases.js";
import type { Lease } from "../../services/shared/leases/shard-leases.js";
import {
  MemoryMembership,
  MemoryMembershipRegistry,
} from "../../services/shared/membership/memory-membership.js";
import { StaticMembership } from "../../services/shared/membership/static-membership.js";
import { silentLogger } from "../../services/shared/log.js";
import {
  ShardOwnership,
  type ShardHost,
} from "../../services/session/ownership/shard-ownership.js";
import { until } from "../helpers/poll.js";

const SHARDS = 8;
const LEASE_TTL_MS = 600;

interface HostEvent {
  kind: "start" | "stop";
  shard: number;
  planned?: boolean;
}

/** Records starts and stops; `serving` is what the host believes it serves. */
class RecordingHost implements ShardHost {
  readonly events: HostEvent[] = [];
  readonly serving = new Set<number>();
  /** Set to delay stops (a drain in progress). */
  stopDelayMs = 0;

  async start(shard: number, _lease: Lease): Promise<void> {
    this.events.push({ kind: "start", shard });
    this.serving.add(shard);
  }

  async stop(shard: number, planned: boolean): Promise<void> {
    this.events.push({ kind: "stop", shard, planned });
    if (this.stopDelayMs > 0) await new Promise((r) => setTimeout(r, this.stopDelayMs));
    this.serving.delete(shard);
  }
}

interface Member {
  id: string;
  host: RecordingHost;
  ownership: ShardOwnership;
  membership: MemoryMembership | StaticMembership;
  stop(): Promise<void>;
}

describe("ShardOwnership (in-process membership and leases)", function () {
  this.timeout(15000);
  let registry: MemoryMembershipRegistry;
  let leases: MemoryShardLeases;
  let members: Member[];

  beforeEach(() => {
    registry = new MemoryMembershipRegistry();
    leases = new MemoryShardLeases({ ttlMs: LEASE_TTL_MS });
    members = [];
  });

  afterEach(async () => {
    await Promise.all(members.map((m) => m.stop()));
  });

  async function member(
    id: string,
    options: { fixedShards?: number[]; membership?: StaticMembership } = {},
  ): Promise<Member> {
    const membership =
      options.membership ?? new MemoryMembership(registry, { heartbeatIntervalMs: 50, ttlMs: 200 });
    const host = new RecordingHost();
    const ownership = new ShardOwnership(membership, leases, host, {
      memberId: id,
      shardCount: SHARDS,
      fixedShards: options.fixedShards,
      leaseTtlMs: LEASE_TTL_MS,
      log: silentLogger,
    });
    await membership.join(id);
    const controller = new AbortController();
    const running = ownership.run(controller.signal);
    await ownership.firstTick();
    let stopped: Promise<void> | undefined;
    const m: Member = {
      id,
      host,
      ownership,
      membership,
      stop: () =>
        (stopped ??= (async () => {
          await membership.leave();
          controller.abort();
          await running;
          await membership.close();
        })()),
    };
    members.push(m);
    return m;
  }

  /** Every shard's live lease holder, and no shard served by two hosts at once. */
  async function holders(): Promise<(string | undefined)[]> {
    for (let s = 0; s < SHARDS; s++) {
      const serving = members.filter((m) => m.host.serving.has(s)).map((m) => m.id);
      assert.ok(serving.length <= 1, `shard ${s} served by ${serving.join(" and ")}`);
    }
    return Promise.all(
      Array.from({ length: SHARDS }, async (_, s) => (await leases.holder(s))?.member),
    );
  }

  it("a lone member serves every shard; a second one takes its share by planned handovers", async () => {
    const a = await member("a");
    assert.deepEqual(a.ownership.serving(), [0, 1, 2, 3, 4, 5, 6, 7]);
    const b = await member("b");
    await until(
      () =>
        b.ownership.serving().length > 0 &&
        a.ownership.serving().length + b.ownership.serving().length === SHARDS,
      "the shards split between a and b",
    );
    await holders();
    for (const shard of b.ownership.serving()) {
      const stopIndex = a.host.events.findIndex((e) => e.kind === "stop" && e.shard === shard);
      assert.ok(stopIndex >= 0, `a stopped shard ${shard} before b took it`);
      assert.equal(a.host.events[stopIndex].planned, true, "a handover is planned");
    }
    assert.deepEqual(b.ownership.serving(), b.ownership.wanted());
  });

  it("never lets two members serve one shard while a slow handover drains", async () => {
    const a = await member("a");
    a.host.stopDelayMs = 300;
    const b = await member("b");
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline) {
      await holders(); // asserts no shard is served twice
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(a.ownership.serving().length + b.ownership.serving().length, SHARDS);
  });

  it("a member that leaves hands every shard over; the others take them", async () => {
    const a = await member("a");
    const b = await member("b");
    await until(() => b.ownership.serving().length > 0, "b serving");
    await b.stop();
    assert.ok(b.host.events.filter((e) => e.kind === "stop").every((e) => e.planned));
    assert.equal(b.host.serving.size, 0);
    await until(() => a.ownership.serving().length === SHARDS, "a serving everything again");
    assert.ok((await holders()).every((h) => h === "a"));
  });

  it("stops a shard at once, not planned, when a fenced write was refused", async () => {
    const a = await member("a");
    a.ownership.stepDown(3);
    await until(
      () => a.host.events.some((e) => e.kind === "stop" && e.shard === 3 && !e.planned),
      "shard 3 stopped",
    );
    // Still wanted, and its lease is still live: taken again only after it lapses.
    await until(() => a.ownership.serving().includes(3), "shard 3 served again", 5000);
    assert.equal(a.host.events.filter((e) => e.kind === "start" && e.shard === 3).length, 2);
  });

  it("stops serving a shard whose lease was lost (taken by another member after it lapsed)", async () => {
    const a = await member("a");
    const lease = a.ownership.leaseOf(5) as Lease;
    await leases.release(lease); // as if it had lapsed
    const stolen = await leases.acquire(5, "intruder");
    assert.ok(stolen);
    await until(
      () => a.host.events.some((e) => e.kind === "stop" && e.shard === 5 && !e.planned),
      "shard 5 stopped",
      LEASE_TTL_MS * 2,
    );
    assert.equal(a.ownership.leaseOf(5), undefined);
  });

  it("two members given the same fixed shards: the second waits until the first is gone", async () => {
    const fixed = [0, 1, 2, 3];
    const a = await member("a", { fixedShards: fixed, membership: new StaticMembership(["a"]) });
    const b = await member("b", { fixedShards: fixed, membership: new StaticMembership(["b"]) });
    assert.deepEqual(a.ownership.serving(), fixed);
    await new Promise((r) => setTimeout(r, LEASE_TTL_MS * 2));
    assert.deepEqual(b.ownership.serving(), [], "b never served a shard a holds");
    await a.stop();
    await until(() => b.ownership.serving().length === fixed.length, "b taking over", 3000);
    assert.deepEqual(b.ownership.serving(), fixed);
  });
});
