// Batched shard reads (issue 9): a session member reads the inboxes of all the shards it serves
// with one blocking XREADGROUP on one connection, rather than one per shard, and every shard's
// entries are still applied, in order, as the set of shards changes. Real session I/O and a
// real redis-server (CLIENT LIST shows the readers).
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { until } from "../helpers/poll.js";
import { connect, startRedis, type RedisServer } from "../helpers/redis-server.js";
import { SessionHarness } from "../helpers/session-harness.js";

/** Connections named like a session member's shard readers. */
async function shardReaders(admin: Redis, consumer: string): Promise<number> {
  const list = (await admin.call("CLIENT", "LIST", "TYPE", "normal")) as string;
  return list.split("\n").filter((line) => line.includes(` name=megaphone-session-${consumer} `))
    .length;
}

describe("shard read loops: one read for every shard a member serves", function () {
  this.timeout(20000);
  let server: RedisServer;
  let admin: Redis;
  let harness: SessionHarness | undefined;

  before(async () => {
    server = await startRedis();
    admin = connect(server.url);
  });
  after(async () => {
    await harness?.stop();
    admin?.disconnect();
    await server?.stop();
  });

  it("reads 8 shards through one connection, and applies entries of every shard", async () => {
    const h = (harness = await SessionHarness.create({
      redis: server.url,
      config: { shardCount: 8 },
    }));
    await h.startSession("s1");
    const users = Array.from({ length: 8 }, (_, shard) => ({
      name: `u${shard}`,
      conn: h.connId(shard),
    }));
    for (const u of users) await h.addUser(`${u.name}@localhost`, `${u.name}-pw`);
    // One connection per shard, each logged in and answering: every inbox is read.
    for (const u of users) await h.login(u.conn, u.name, `${u.name}-pw`, "r");
    for (const u of users) assert.match(await h.ping(u.conn, `p-${u.name}`), /type="result"/);
    await until(async () => (await shardReaders(admin, "s1")) > 0, "the reader connected");
    assert.equal(await shardReaders(admin, "s1"), 1, "one reader for the 8 shards");
  });
});
