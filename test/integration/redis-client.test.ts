// The services' Redis client (redis/client.ts) against a real redis-server: the commands one
// event-loop turn issues leave in one socket write (a corked socket, not auto-pipelining),
// which the server's own read counter shows, and they are answered in order.
// (A plain client is no fixed contrast: Node coalesces its writes too while the socket is busy.)
// Also the one script every client may run unfenced, STREAM_ADMIN: what it runs, and refuses.
import assert from "node:assert/strict";
import { createStreamGroup, streamGroups } from "../../services/shared/bus/redis-bus-parts.js";
import { createRedis, type Redis } from "../../services/shared/redis/client.js";
import { scriptCommands } from "../../services/shared/redis/script-commands.js";
import { connect, startRedis, type RedisServer } from "../helpers/redis-server.js";

const COMMANDS = 50;

/** Socket reads the server has done so far (INFO stats; the INFO call adds one). */
async function readsProcessed(admin: Redis): Promise<number> {
  const info = await admin.info("stats");
  return Number(/total_reads_processed:(\d+)/.exec(info)?.[1]);
}

/** Issues COMMANDS SETs and GETs in one turn; the server reads spent on them, and the GETs. */
async function oneTurn(client: Redis, admin: Redis) {
  await client.ping(); // connected and ready
  const before = await readsProcessed(admin);
  const sets = Array.from({ length: COMMANDS }, (_, i) => client.set(`k${i}`, String(i)));
  const gets = Array.from({ length: COMMANDS }, (_, i) => client.get(`k${i}`));
  await Promise.all(sets);
  const values = await Promise.all(gets);
  return { reads: (await readsProcessed(admin)) - before - 1, values };
}

describe("the services' Redis client", function () {
  this.timeout(10000);
  let server: RedisServer;
  let admin: Redis;

  before(async () => {
    server = await startRedis();
    admin = connect(server.url);
  });
  after(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it("sends the commands of one turn in one write, answered in order", async () => {
    const client = createRedis(server.url, "test-corked");
    try {
      const corked = await oneTurn(client, admin);
      // The same client, one awaited command per turn: one read each, so the counter sees writes.
      const before = await readsProcessed(admin);
      for (let i = 0; i < 10; i++) await client.get(`k${i}`);
      const separate = (await readsProcessed(admin)) - before - 1;
      console.log(
        `      ${COMMANDS * 2} commands in one turn: the server read ${corked.reads} time(s); 10 commands in 10 turns: ${separate} reads`,
      );
      assert.deepEqual(
        corked.values,
        Array.from({ length: COMMANDS }, (_, i) => String(i)),
      );
      // One write may still arrive in two segments.
      assert.ok(corked.reads <= 2, `read ${corked.reads} times`);
      assert.equal(separate, 10);
    } finally {
      client.disconnect();
    }
  });

  it("goes on writing after a turn's commands have left", async () => {
    const client = createRedis(server.url, "test-corked-turns");
    try {
      for (let turn = 0; turn < 20; turn++) {
        await new Promise((resolve) => setImmediate(resolve));
        assert.equal(await client.incr("turns"), turn + 1);
      }
    } finally {
      client.disconnect();
    }
  });

  // STREAM_ADMIN exists only to name the stream as a key (cluster routing) for XGROUP and
  // XINFO; any other command through it would be a write that escapes the fenced scripts.
  it("runs XGROUP and XINFO through STREAM_ADMIN, and nothing else", async () => {
    const client = createRedis(server.url, "test-stream-admin");
    try {
      await createStreamGroup(client, "admin-stream", "g", "0");
      await assert.rejects(createStreamGroup(client, "admin-stream", "g", "0"), /BUSYGROUP/);
      const groups = await streamGroups(client, "admin-stream");
      assert.equal(groups.length, 1);
      assert.ok(groups[0].includes("g"), `groups: ${JSON.stringify(groups)}`);
      // Typed to take XGROUP and XINFO only; the script must refuse the rest all the same.
      const scripts = scriptCommands(client);
      const untyped = scripts.mpStreamAdmin.bind(scripts) as (
        stream: string,
        ...args: string[]
      ) => Promise<unknown>;
      for (const args of [
        ["DEL", ""],
        ["XADD", "*", "f", "v"],
        ["del", ""],
        ["SET", "x"],
      ]) {
        await assert.rejects(
          untyped("admin-stream", ...args),
          /STREAM_ADMIN runs XGROUP and XINFO only/,
          args[0],
        );
      }
      assert.equal(await client.exists("admin-stream"), 1);
      assert.equal(await client.xlen("admin-stream"), 0);
    } finally {
      client.disconnect();
    }
  });
});
