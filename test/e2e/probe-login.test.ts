// `megaphone probe login`, the command the chart's `helm test` pod runs, as a process against a
// real mesh (redis-server, an edge, a session): with a throwaway account it creates and deletes,
// with an existing account, and the ways it must fail (wrong password, no edge, a Node without
// its WebSocket client), each with exit code 1 and the step that failed.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createRedis } from "../../services/shared/redis/client.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { RedisAccountStore } from "../../services/shared/stores/account/redis-account-store.js";
import { Mesh, type EdgeProcess } from "../helpers/cluster.js";
import { freePort } from "../helpers/redis-server.js";

const CLI = fileURLToPath(new URL("../../services/cli/main.js", import.meta.url));
const RUN_TIMEOUT_MS = 30000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe("e2e: megaphone probe login (the chart's helm test) against a real mesh", function () {
  this.timeout(60000);
  let mesh: Mesh;
  let edge: EdgeProcess;

  /** Runs the CLI as the test pod does. */
  const probe = (args: string[]): Promise<Run> =>
    new Promise((resolve, reject) => {
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("MEGAPHONE_")) env[k] = v;
      Object.assign(env, mesh.env(), { MEGAPHONE_LOG_LEVEL: "warn" });
      execFile(
        process.execPath,
        [CLI, "probe", "login", ...args],
        { env, timeout: RUN_TIMEOUT_MS, killSignal: "SIGKILL" },
        (err, stdout, stderr) => {
          if (err && typeof err.code !== "number")
            reject(new Error(`probe did not exit: ${err.message}\n${stderr}`));
          else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
        },
      );
    });

  const accountExists = async (jid: string): Promise<boolean> => {
    const redis = createRedis(mesh.redis.url, "megaphone-test-probe");
    try {
      return (await new RedisAccountStore(redis, redisKeys()).get(jid)) !== undefined;
    } finally {
      redis.disconnect();
    }
  };

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({ shardCount: 8 });
    await mesh.session("s1", "");
    edge = await mesh.edge("e1", "");
    await mesh.addUser("alice@localhost", "alice-secret");
  });

  after(async () => {
    await mesh?.stop();
  });

  it("creates a throwaway account, logs it in through the edge, sees its presence back, and deletes it", async () => {
    const run = await probe(["--url", edge.url, "--throwaway-user"]);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    const jid = /created throwaway account (\S+)/.exec(run.stdout)?.[1];
    assert.ok(jid?.endsWith("@localhost"), run.stdout);
    if (!jid) return;
    for (const line of [
      `authenticated as ${jid} (SCRAM-SHA-256)`,
      `bound ${jid}/probe`,
      "initial presence sent and received back",
      `login OK: ${jid}/probe`,
      `deleted throwaway account ${jid}`,
    ])
      assert.ok(run.stdout.includes(line), `missing "${line}" in:\n${run.stdout}`);
    assert.equal(await accountExists(jid), false, "the throwaway account is gone");
  });

  it("logs an existing account in, and leaves it in place", async () => {
    const run = await probe([
      "--url",
      edge.url,
      "--jid",
      "alice@localhost",
      "--password",
      "alice-secret",
      "--resource",
      "helm-test",
    ]);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /login OK: alice@localhost\/helm-test/);
    assert.equal(await accountExists("alice@localhost"), true);
  });

  it("exits 1 naming SASL and the condition when the password is wrong", async () => {
    const run = await probe(["--url", edge.url, "--jid", "alice@localhost", "--password", "nope"]);
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stderr, /login FAILED at sasl: not-authorized/);
  });

  it("exits 1 at connect when nothing listens at the URL", async () => {
    const url = `ws://127.0.0.1:${await freePort()}/xmpp-websocket`;
    const run = await probe(["--url", url, "--throwaway-user", "--timeout-ms", "5000"]);
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stderr, /login FAILED at connect: cannot connect/);
    const jid = /created throwaway account (\S+)/.exec(run.stdout)?.[1] as string;
    assert.ok(run.stdout.includes(`deleted throwaway account ${jid}`), "deleted on failure too");
    assert.equal(await accountExists(jid), false);
  });
});
