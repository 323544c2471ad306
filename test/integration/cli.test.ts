// The `megaphone` command as a process: account administration against a private redis-server,
// --help, and start-up failures that name the setting (exit code 2).
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { RedisAccountStore } from "../../services/shared/stores/account/redis-account-store.js";
import { RedisOfflineStore } from "../../services/shared/stores/offline/redis-offline-store.js";
import { RedisRosterStore } from "../../services/shared/stores/roster/redis-roster-store.js";
import { opens } from "../helpers/account-check.js";
import { connect, startRedis, type RedisServer } from "../helpers/redis-server.js";

const MAIN = fileURLToPath(new URL("../../services/cli/main.js", import.meta.url));
const RUN_TIMEOUT_MS = 15000;

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without any MEGAPHONE_* variable of the machine running the tests. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!key.startsWith("MEGAPHONE_")) env[key] = value;
  return { ...env, MEGAPHONE_LOG_LEVEL: "warn", ...extra };
}

function run(args: string[], env: Record<string, string>, stdin?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [MAIN, ...args],
      { env: cleanEnv(env), timeout: RUN_TIMEOUT_MS, killSignal: "SIGKILL" },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== "number") {
          reject(new Error(`megaphone ${args.join(" ")} did not exit: ${err.message}\n${stderr}`));
          return;
        }
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
    else child.stdin?.end();
  });
}

describe("megaphone CLI", function () {
  this.timeout(60000);
  let redis: RedisServer;
  let client: Redis;
  let accounts: RedisAccountStore;
  let env: Record<string, string>;

  before(async () => {
    redis = await startRedis();
    client = connect(redis.url);
    accounts = new RedisAccountStore(client, redisKeys());
    env = { MEGAPHONE_REDIS: redis.url };
  });

  after(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  describe("user", () => {
    it("adds an account with --password, and refuses to add it twice (exit 1)", async () => {
      const added = await run(["user", "add", "bob@localhost", "--password", "pw"], env);
      assert.equal(added.code, 0, added.stderr);
      assert.match(added.stdout, /created bob@localhost/);
      const account = await accounts.get("bob@localhost");
      assert.ok(account, "the account is stored under the default prefix mp");
      assert.ok(await opens(account, "bob", "pw"));
      assert.equal(await opens(account, "bob", "other"), false);
      assert.equal(JSON.stringify(account).includes('"pw"'), false, "no password stored");

      const again = await run(["user", "add", "bob@localhost", "--password", "other"], env);
      assert.equal(again.code, 1);
      assert.match(again.stdout, /exists already/);
      assert.ok(await opens(await accounts.get("bob@localhost"), "bob", "pw"), "unchanged");
    });

    it("changes a password read from stdin", async () => {
      const added = await run(["user", "add", "carol@localhost", "--password=old"], env);
      assert.equal(added.code, 0, added.stderr);
      const changed = await run(["user", "passwd", "carol@localhost"], env, "new secret\n");
      assert.equal(changed.code, 0, changed.stderr);
      assert.match(changed.stdout, /changed password of carol@localhost/);
      const account = await accounts.get("carol@localhost");
      assert.ok(await opens(account, "carol", "new secret"));
      assert.equal(await opens(account, "carol", "old"), false);
    });

    it("refuses passwd for a missing account (exit 1) and an empty password (exit 2)", async () => {
      const missing = await run(["user", "passwd", "nobody@localhost", "--password", "x"], env);
      assert.equal(missing.code, 1);
      assert.match(missing.stdout, /no such user nobody@localhost/);
      const empty = await run(["user", "add", "erin@localhost"], env, "\n");
      assert.equal(empty.code, 2);
      assert.match(empty.stderr, /password/);
      assert.equal(await accounts.get("erin@localhost"), undefined);
    });

    it("deletes an account, and says so when there is none (exit 1)", async () => {
      assert.equal((await run(["user", "add", "dave@localhost", "--password", "d"], env)).code, 0);
      const deleted = await run(["user", "del", "dave@localhost"], env);
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.match(deleted.stdout, /deleted dave@localhost/);
      assert.equal(await accounts.get("dave@localhost"), undefined);
      const again = await run(["user", "del", "dave@localhost"], env);
      assert.equal(again.code, 1);
      assert.match(again.stdout, /no such user/);
    });

    it("deletes completely: the contacts' rosters lose the account, which comes back empty", async () => {
      const rosters = new RedisRosterStore(client, redisKeys());
      const offline = new RedisOfflineStore(client, redisKeys());
      for (const user of ["frank@localhost", "gina@localhost"])
        assert.equal((await run(["user", "add", user, "--password", "x"], env)).code, 0);
      const both = (jid: string) => ({ jid, subscription: "both" as const, groups: [] });
      await rosters.replaceItem(
        "frank@localhost",
        "gina@localhost",
        undefined,
        both("gina@localhost"),
        10,
      );
      await rosters.replaceItem(
        "gina@localhost",
        "frank@localhost",
        undefined,
        both("frank@localhost"),
        10,
      );
      await rosters.addPendingIn("frank@localhost", "hal@localhost", "<presence/>", 10);
      await offline.pushFrom("frank@localhost", "", "<message/>", {
        maxMessages: 10,
        maxBytes: 10000,
        maxPerSender: 1,
      });

      const deleted = await run(["user", "del", "frank@localhost"], env);
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.match(
        deleted.stdout,
        /deleted frank@localhost \(0 connection\(s\) ended, 2 contact\(s\) told\)/,
      );
      assert.equal(await rosters.getItem("gina@localhost", "frank@localhost"), undefined);
      assert.deepEqual(await rosters.get("frank@localhost"), { version: "0", items: [] });
      assert.deepEqual(await rosters.listPendingIn("frank@localhost"), new Map());
      assert.equal(await offline.count("frank@localhost"), 0);
    });

    it("refuses a full JID and a missing redis with exit 2", async () => {
      const full = await run(["user", "add", "bob@localhost/res", "--password", "x"], env);
      assert.equal(full.code, 2);
      assert.match(full.stderr, /bare JID/);
      const noRedis = await run(["user", "add", "bob@localhost", "--password", "x"], {});
      assert.equal(noRedis.code, 2);
      assert.match(noRedis.stderr, /MEGAPHONE_REDIS/);
    });
  });

  it("prints every setting with --help (exit 0)", async () => {
    const help = await run(["--help"], {});
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /megaphone user add JID/);
    assert.match(help.stdout, /--shard-count\s+MEGAPHONE_SHARD_COUNT/);
    assert.match(help.stdout, /MEGAPHONE_REDIS/);
    const sub = await run(["session", "--help"], {});
    assert.equal(sub.code, 0, sub.stderr);
    assert.match(sub.stdout, /MEGAPHONE_SHARD_COUNT/);
  });

  it("exits 2 naming MEGAPHONE_SHARD_COUNT when session gets a shard count of 3", async () => {
    const result = await run(["session"], { ...env, MEGAPHONE_SHARD_COUNT: "3" });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /MEGAPHONE_SHARD_COUNT/);
    assert.match(result.stderr, /power of two/);
  });

  it("exits 2 naming --domain / MEGAPHONE_DOMAIN when start gets an invalid domain", async () => {
    const result = await run(["start", "--port", "0", "--domain", "chat example.com"], {});
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--domain \/ MEGAPHONE_DOMAIN/);
    assert.match(result.stderr, /chat example\.com/);
  });

  it("exits 2 naming MEGAPHONE_REDIS when edge has no redis", async () => {
    const result = await run(["edge", "--port", "0"], {});
    assert.equal(result.code, 2);
    assert.match(result.stderr, /MEGAPHONE_REDIS/);
  });

  it("exits 2 for an unknown command or flag", async () => {
    const command = await run(["serve"], {});
    assert.equal(command.code, 2);
    assert.match(command.stderr, /unknown command "serve"/);
    const flag = await run(["session", "--shard-cnt", "4"], env);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--shard-cnt/);
  });
});
