// What a connection's snapshot costs per batch (issue 6, item 6): the directed-presence list
// (up to directedPresenceMaxBytes of JIDs) is kept in its own key, written when it changes,
// so no snapshot carries it; and a message-only batch changes nothing durable, so it writes no
// snapshot at all (issue 9). Real session I/O and a real redis-server.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { connect, startRedis, type RedisServer } from "../helpers/redis-server.js";
import { SessionHarness } from "../helpers/session-harness.js";

const KEYS = redisKeys();
const RECIPIENTS = 25;
const LONG = "r".repeat(1000);

async function inputBytes(admin: Redis): Promise<number> {
  const stats = await admin.info("stats");
  return Number(/total_net_input_bytes:(\d+)/.exec(stats)?.[1]);
}

describe("connection snapshots stay small with a long directed-presence list", function () {
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

  it("writes no directed-presence recipient in the snapshot of a message-only batch", async () => {
    const h = (harness = await SessionHarness.create({ redis: server.url }));
    await h.startSession();
    await h.addUser("alice@localhost", "alice-pw");
    await h.addUser("bob@localhost", "bob-pw");
    const c = h.connId(0);
    await h.login(c, "alice", "alice-pw", "desk");
    await h.send(c, `<presence xmlns="jabber:client"/>`);
    for (let i = 0; i < RECIPIENTS; i++)
      await h.send(c, `<presence xmlns="jabber:client" to="bob@localhost/${LONG}${i}"/>`);
    await h.ping(c, "p1");
    const directed = await admin.smembers(KEYS.directed(0, c));
    assert.equal(directed.length, RECIPIENTS, "every recipient is remembered");

    // Saved by the presence batches, which changed the connection, without the list.
    const saved = (await admin.hget(KEYS.snapshot(0), c)) ?? "";
    assert.ok(saved !== "" && !saved.includes(LONG), "no recipient in the saved snapshot");
    const before = JSON.parse(saved) as { lastEntryId: string };
    const written = await inputBytes(admin);
    await h.send(c, `<message xmlns="jabber:client" to="bob@localhost"><body>hi</body></message>`);
    await h.ping(c, "p2");
    const perBatch = (await inputBytes(admin)) - written;
    const snapshot = (await admin.hget(KEYS.snapshot(0), c)) ?? "";
    const after = JSON.parse(snapshot) as { lastEntryId: string };
    assert.equal(after.lastEntryId, before.lastEntryId, "the message and the ping saved none");
    assert.ok(!snapshot.includes(LONG), "no recipient in the snapshot");
    process.stdout.write(
      `      Redis bytes written for a message and a ping (${RECIPIENTS} directed recipients of 1 KiB): ${perBatch}\n`,
    );
    // The message (stored offline) and the ping's answer; the list alone is 25 KiB.
    assert.ok(perBatch < 8 * 1024, `${perBatch} bytes written`);
  });
});
