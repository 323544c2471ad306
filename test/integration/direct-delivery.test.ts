// Two-hop delivery's Redis step (DIRECT_DELIVER through RedisBus.direct) on a real
// redis-server: each way a stanza can go (the edge, a route, undelivered) and each check that
// sends it through the shard inbox instead (binding, edge, order mark), with the entries each
// stream holds afterwards.
import assert from "node:assert/strict";
import { RedisBus, SESSION_GROUP } from "../../services/shared/bus/redis-bus.js";
import type { DirectWrite } from "../../services/shared/bus/bus.js";
import { redisKeys, type Keys } from "../../services/shared/redis/keys.js";
import { RedisRouteStore } from "../../services/shared/stores/route/redis-route-store.js";
import { connect, startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";
import { report } from "../helpers/report.js";
import type { Redis } from "ioredis";
import { testBusOptions } from "../helpers/test-bus.js";

const USER = "bob@localhost";
const CONN = "e2.3.1";
const EDGE = "e2:abc";
const SHARD = 3;
const PRESENCE = "<presence from='bob@localhost/phone'/>";

describe("RedisBus direct writes (two-hop delivery)", function () {
  this.timeout(10000);
  let server: RedisServer;
  let redis: Redis;
  let keys: Keys;
  let bus: RedisBus;
  let routes: RedisRouteStore;

  before(async () => {
    server = await startRedis();
    redis = connect(server.url);
  });
  after(async () => {
    redis?.disconnect();
    await server?.stop();
  });
  beforeEach(async () => {
    keys = redisKeys(uniquePrefix());
    bus = new RedisBus(testBusOptions(server.url, keys, { edgeInboxTtlMs: 60000 }));
    routes = new RedisRouteStore(redis, keys);
    // Bob's binding, available, with his edge recorded; his edge's inbox; his shard's group.
    await routes.bind(USER, "phone", CONN, 10);
    await routes.update(USER, "phone", CONN, { presence: PRESENCE, edge: EDGE });
    await redis.xadd(keys.edgeInbox(EDGE), "*", "k", "close", "c", "e2.3.0");
    await redis.xgroup("CREATE", keys.shardInbox(SHARD), SESSION_GROUP, "$", "MKSTREAM");
  });
  afterEach(() => bus.close());

  const write = (mark = "", extra: Partial<DirectWrite> = {}) =>
    bus.direct!.write({
      bareJid: USER,
      resource: "phone",
      connId: CONN,
      edge: EDGE,
      member: "s1",
      mark,
      stanza: "<message to='bob@localhost/phone'/>",
      origin: "e1.0.1|1-0|0",
      ...extra,
    });

  /** Entry fields of a stream, oldest first. */
  async function entries(key: string): Promise<Record<string, string>[]> {
    return (await redis.xrange(key, "-", "+")).map(([, fields]) => {
      const out: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]] = fields[i + 1];
      return out;
    });
  }
  const edgeData = async () => (await entries(keys.edgeInbox(EDGE))).filter((e) => e.k === "data");
  const inbox = () => entries(keys.shardInbox(SHARD));

  it("writes to the edge, with the origin, while the binding names the connection and the edge", async () => {
    assert.deepEqual(await write(), { path: "edge" });
    assert.deepEqual(await edgeData(), [
      { k: "data", c: CONN, d: "<message to='bob@localhost/phone'/>", o: "e1.0.1|1-0|0" },
    ]);
    assert.deepEqual(await inbox(), []);
  });

  it("routes through the shard inbox once the binding lost its edge, or names another", async () => {
    const cases: [string, () => Promise<unknown>][] = [
      ["another edge", () => routes.update(USER, "phone", CONN, { edge: "e9:zzz" })],
      ["XEP-0198 enabled", () => routes.update(USER, "phone", CONN, { edge: undefined })],
      ["unavailable", () => routes.update(USER, "phone", CONN, { presence: undefined })],
      ["taken over", () => routes.bind(USER, "phone", "e2.3.2", 10)],
      ["unbound", () => routes.unbind(USER, "phone", "e2.3.2")],
    ];
    for (const [why, change] of cases) {
      await change();
      const outcome = await write();
      assert.equal(outcome.path, "route", why);
    }
    assert.deepEqual(await edgeData(), []);
    const routed = await inbox();
    assert.equal(routed.length, cases.length);
    for (const r of routed)
      assert.deepEqual(r, {
        k: "route",
        c: CONN,
        d: "<message to='bob@localhost/phone'/>",
        o: "e1.0.1|1-0|0",
      });
    report(`${cases.length} refused direct writes routed, 0 on the edge`);
  });

  it("waits for the order mark: routes until the group has read and acknowledged it", async () => {
    // A route the member wrote itself (a plain XADD): its id is the mark.
    const inboxKey = keys.shardInbox(SHARD);
    const mark = (await redis.xadd(inboxKey, "*", "k", "route", "c", CONN, "d", "<m/>")) as string;
    // Each check by another member id, so that no remembered fallback comes into it.
    assert.equal((await write("9999999999999-0", { member: "a" })).path, "route", "not reached");
    assert.equal((await write(mark, { member: "b" })).path, "route", "not read yet");
    const read = (await redis.xreadgroup(
      "GROUP",
      SESSION_GROUP,
      "m1",
      "COUNT",
      1,
      "STREAMS",
      inboxKey,
      ">",
    )) as [string, [string, string[]][]][];
    assert.equal(read[0][1][0][0], mark);
    assert.equal((await write(mark, { member: "c" })).path, "route", "read, still pending");
    await redis.xack(inboxKey, SESSION_GROUP, mark);
    assert.equal((await write(mark, { member: "d" })).path, "edge", "handled");
    assert.equal((await edgeData()).length, 1);
  });

  it("remembers a fallback for the member's next writes, even those sent before its answer, until handled", async () => {
    // Not awaited one by one: the second is sent before the first's answer, as a burst is.
    const [first, second] = await Promise.all([write("9999999999999-0"), write()]);
    assert.equal(first.path, "route", "a mark the group has not reached");
    assert.equal(
      second.path,
      "route",
      "behind the first's fallback, which the member does not know yet",
    );
    assert.equal(
      (await write("", { member: "s2" })).path,
      "edge",
      "another member's writes are not held",
    );
    const fallback = (second as { inboxId: string }).inboxId;
    assert.equal(await redis.hget(keys.directMarks("s1"), String(SHARD)), fallback);
    // The recipient's session handles both routes.
    const inboxKey = keys.shardInbox(SHARD);
    const read = (await redis.xreadgroup(
      "GROUP",
      SESSION_GROUP,
      "m1",
      "STREAMS",
      inboxKey,
      ">",
    )) as [string, [string, string[]][]][];
    await redis.xack(inboxKey, SESSION_GROUP, ...read[0][1].map(([id]) => id));
    assert.equal((await write()).path, "edge");
    assert.equal(await redis.hget(keys.directMarks("s1"), String(SHARD)), null, "forgotten");
    assert.equal((await edgeData()).length, 2);
  });

  it("returns the stanza as undelivered when the edge inbox is gone, creating nothing", async () => {
    await redis.del(keys.edgeInbox(EDGE));
    const outcome = await write();
    assert.equal(outcome.path, "undelivered");
    assert.equal(await redis.exists(keys.edgeInbox(EDGE)), 0);
    assert.deepEqual(await inbox(), [
      { k: "undelivered", c: CONN, e: EDGE, d: "<message to='bob@localhost/phone'/>" },
    ]);
  });
});
