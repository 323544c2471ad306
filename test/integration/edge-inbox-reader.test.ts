// The edge's inbox reader on a Redis that keeps failing it: every failed start of the reader
// (here: creating the inbox is refused) must release its blocking Redis connection, or an edge
// restarting its reader with backoff would leak one connection per retry (issue 6, item 18).
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { until } from "../helpers/poll.js";
import { LogCapture } from "../helpers/log-capture.js";
import { startTestEdge } from "../helpers/edge-harness.js";
import { connectAdmin, restoreDefault, revokeFromDefault } from "../helpers/redis-admin.js";
import { report } from "../helpers/report.js";
import { startRedis, type RedisServer } from "../helpers/redis-server.js";

/** Connections named `name` in CLIENT LIST. */
async function clientsNamed(admin: Redis, name: string): Promise<number> {
  const list = (await admin.call("CLIENT", "LIST")) as string;
  return list.split("\n").filter((line) => line.includes(` name=${name} `)).length;
}

describe("edge inbox reader on a failing Redis", function () {
  this.timeout(20000);
  let server: RedisServer;
  let admin: Redis;
  const cleanups: (() => unknown)[] = [];

  before(async () => {
    server = await startRedis();
    admin = await connectAdmin(server.url);
  });
  after(async () => {
    admin?.disconnect();
    await server?.stop();
  });
  afterEach(async () => {
    await restoreDefault(admin);
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("releases the blocking client of every failed start, then reads once Redis allows it", async () => {
    const log = new LogCapture("error");
    // The inbox is created with MULTI DEL XADD PEXPIRE: without DEL every start fails.
    await revokeFromDefault(admin, "del");
    const edge = await startTestEdge(server.url, cleanups, {}, { log: log.logger });
    const failedStarts = 5;
    await log.waitFor("edge inbox reader failed; restarting", failedStarts, 10000);
    const readers = await clientsNamed(admin, `megaphone-edge-${edge.handle.address}`);
    report(`blocking clients after ${failedStarts} failed starts: ${readers}`);
    // At most the one of the attempt in progress; before the fix, one per failed start.
    assert.ok(readers <= 1, `${readers} blocking clients open`);
    await restoreDefault(admin);
    const inbox = edge.keys.edgeInbox(edge.handle.address);
    await until(async () => (await admin.exists(inbox)) === 1, "the inbox", 10000);
    await edge.roundTrip(await edge.connect());
    assert.equal(await clientsNamed(admin, `megaphone-edge-${edge.handle.address}`), 1);
  });
});
