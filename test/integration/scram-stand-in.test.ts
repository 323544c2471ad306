// Issue 6 item 3: the SCRAM stand-in key, behind the salts shown for users that do not exist,
// is one per deployment in Redis mode. Backends built by createBackend on one Redis stand for
// session processes (each has its own clients); a new backend stands for a restart.
import assert from "node:assert/strict";
import { DEFAULTS, type Config } from "../../services/shared/config.js";
import { silentLogger } from "../../services/shared/log.js";
import { createBackend, type Backend } from "../../services/shared/wiring.js";
import { scramStart } from "../../services/session/core/sasl/scram.js";
import { monitorRedis } from "../helpers/redis-monitor.js";
import { connect, startRedis, type RedisServer } from "../helpers/redis-server.js";

/** The salt a session built on `backend` shows `username` when no such account exists. */
async function standInSaltOf(backend: Backend, username: string): Promise<string> {
  const { serverFirst } = scramStart("SCRAM-SHA-256", `n,,n=${username},r=abc`, undefined, {
    domain: "localhost",
    standIn: { saltKey: await backend.accounts.standInKey(), iterations: 4096 },
  });
  return /,s=([^,]+),/.exec(serverFirst)?.[1] ?? "";
}

describe("SCRAM stand-in key across session processes (Redis)", function () {
  this.timeout(20000);
  let server: RedisServer;
  let config: Config;
  const backends: Backend[] = [];

  function backend(): Backend {
    const created = createBackend(config, silentLogger);
    backends.push(created);
    return created;
  }

  before(async () => {
    server = await startRedis();
    config = { ...DEFAULTS, redis: server.url, logLevel: "silent" };
  });

  after(async () => {
    await Promise.all(backends.map((b) => b.close()));
    await server?.stop();
  });

  it("shows a missing user the same salt from every process and after a restart", async () => {
    const [one, two] = [backend(), backend()];
    const [fromOne, fromTwo] = await Promise.all([
      standInSaltOf(one, "nobody"),
      standInSaltOf(two, "NOBODY"),
    ]);
    assert.equal(fromTwo, fromOne);
    await one.close();
    assert.equal(await standInSaltOf(backend(), "Nobody"), fromOne, "after a restart");
  });

  it("agrees on a new key once Redis lost its data, rather than each keeping an old one", async () => {
    const [one, two] = [backend(), backend()];
    const before = await standInSaltOf(one, "nobody");
    const admin = connect(server.url);
    await admin.flushall();
    admin.disconnect();
    const after = await standInSaltOf(two, "nobody");
    assert.notEqual(after, before, "a new key was created");
    assert.equal(await standInSaltOf(one, "nobody"), after);
  });

  it("reads an existing key with one GET and writes it only while it is missing", async () => {
    const one = backend();
    const admin = connect(server.url);
    await admin.flushall();
    const commands: string[] = [];
    const monitor = await monitorRedis(server.url, ({ args, source }) => {
      if (args.some((a) => a.endsWith(":standinkey")))
        commands.push(`${source === "lua" ? "lua " : ""}${args[0].toLowerCase()}`);
    });
    try {
      const first = await standInSaltOf(one, "nobody");
      assert.equal(await standInSaltOf(one, "nobody"), first);
    } finally {
      await monitor.stopWhenCaughtUp(admin);
      admin.disconnect();
    }
    // Missing: read, created, read back; then existing: one read.
    assert.deepEqual(commands, ["get", "set", "get", "get"]);
  });
});
