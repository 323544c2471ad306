// What one login costs a session member in Redis script calls (issue 9): every step of a login
// changes its connection, so each of its units writes a snapshot; that fenced write carries the
// unit's acknowledgement too (FENCED_SNAPSHOT_WRITE), so a login step is one fenced script
// call, not a snapshot write and then an acknowledgement. Counted with MONITOR on the test's own
// redis-server, each EVALSHA named by the script it runs, so the member's background scripts
// (lease renewals, the edge heartbeat) are told apart from the login's.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import * as lua from "../../services/shared/redis/scripts.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import {
  acknowledgedUpTo,
  connectAdmin,
  restoreDefault,
  revokeKeyFromDefault,
} from "../helpers/redis-admin.js";
import { monitorRedis } from "../helpers/redis-monitor.js";
import { startRedis, type RedisServer } from "../helpers/redis-server.js";
import { report } from "../helpers/report.js";
import { SessionHarness } from "../helpers/session-harness.js";
import { until } from "../helpers/poll.js";

const KEYS = redisKeys();
/** The scripts that write a shard's snapshots or acknowledge its inbox entries. */
const FENCED_SHARD_WRITES = new Set(["FENCED_SNAPSHOT_WRITE", "FENCED_XACK", "FENCED_XACK_MANY"]);

const scripts = Object.entries(lua as Record<string, string>);
/** Script name by the SHA1 of its source, as EVALSHA names it. */
const scriptBySha = new Map(
  scripts.map(([name, source]) => [createHash("sha1").update(source).digest("hex"), name]),
);
/**
 * Script name by its source as an EVAL (a script's first call on a connection) shows it:
 * MONITOR escapes quotes and line breaks, so sources are compared by their letters and digits.
 */
const lettersOf = (source: string) => source.replace(/\\[nrt"\\]|[^A-Za-z0-9]/g, "");
const scriptBySource = new Map(scripts.map(([name, source]) => [lettersOf(source), name]));

/** Counts the scripts clients call (EVALSHA, EVAL) by name until stop(). */
async function countScripts(url: string, admin: Redis) {
  const calls = new Map<string, number>();
  const monitor = await monitorRedis(url, ({ args, source }) => {
    // Commands a script runs are shown too, from source "lua": not calls of their own.
    if (source === "lua") return;
    const command = String(args[0]).toLowerCase();
    if (command !== "evalsha" && command !== "eval") return;
    const script = String(args[1]);
    const name =
      (command === "eval" ? scriptBySource.get(lettersOf(script)) : scriptBySha.get(script)) ??
      `unknown ${command} ${script.slice(0, 80)}`;
    calls.set(name, (calls.get(name) ?? 0) + 1);
  });
  // A script's effect can be seen before this process has read its line from the monitor.
  return { calls, stop: () => monitor.stopWhenCaughtUp(admin) };
}

describe("a login step's snapshot and acknowledgement: one fenced script call", function () {
  this.timeout(30000);
  let server: RedisServer;
  let admin: Redis;
  let h: SessionHarness;

  before(async () => {
    server = await startRedis();
    admin = await connectAdmin(server.url, 1);
    h = await SessionHarness.create({ redis: `${server.url}/1` });
    await h.startSession("s1");
  });
  after(async () => {
    await h?.stop();
    admin?.disconnect();
    await server?.stop();
  });

  /** A whole RFC 6120/6121 login: stream, SASL, restart, bind, initial presence, roster. */
  async function login(connId: string, user: string): Promise<void> {
    await h.addUser(`${user}@localhost`, `${user}-pw`);
    await h.login(connId, user, `${user}-pw`, "desk");
    const acknowledged = (id: string) =>
      until(() => acknowledgedUpTo(admin, KEYS.shardInbox(0), id), `${user}'s ${id} acknowledged`);
    // The presence has no answer to wait for; done, it leaves the roster query a unit of its own.
    await acknowledged(await h.send(connId, `<presence xmlns="jabber:client"/>`));
    const last = await h.send(
      connId,
      `<iq xmlns="jabber:client" type="get" id="roster-1"><query xmlns="jabber:iq:roster"/></iq>`,
    );
    await h.waitFrame(connId, (f) => f.includes(`id="roster-1"`), "the roster result");
    // The answer is written before the unit's snapshot and acknowledgement: wait for those too.
    await acknowledged(last);
  }

  it("writes each login step's snapshot and acknowledgement in one fenced script call", async () => {
    // A first login loads the scripts (EVAL once each): the measured one is a returning client's.
    await login(h.connId(0), "warm");
    const counted = await countScripts(server.url, admin);
    try {
      await login(h.connId(0), "alice");
    } finally {
      await counted.stop();
    }
    // open, <open/>, <auth/>, <open/> again, bind, presence, roster: one unit each.
    const entries = 7;
    const fenced = [...counted.calls]
      .filter(([name]) => FENCED_SHARD_WRITES.has(name))
      .reduce((sum, [, n]) => sum + n, 0);
    const all = [...counted.calls.values()].reduce((sum, n) => sum + n, 0);
    const byName = [...counted.calls]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, n]) => `${name} ${n}`)
      .join(", ");
    report(`one login, ${entries} entries: ${fenced} fenced snapshot/ack calls, ${all} in all`);
    report(byName);
    assert.ok(
      fenced <= entries,
      `at most one fenced script call per login step, got ${fenced}: ${byName}`,
    );
    assert.equal(counted.calls.get("FENCED_XACK") ?? 0, 0, byName);
    assert.equal(counted.calls.get("FENCED_XACK_MANY") ?? 0, 0, byName);
  });

  it("reads a user's account, stand-in key and roster without transactions or writes", async () => {
    // Another user's login first: the scripts are loaded and the stand-in key exists.
    await login(h.connId(0), "erin");
    const commands: string[] = [];
    /** Sources inside a MULTI, until their EXEC. */
    const inTransaction = new Set<string>();
    const monitor = await monitorRedis(server.url, ({ args, source }) => {
      if (source === "lua") return;
      const name = String(args[0]).toLowerCase();
      if (name === "multi") inTransaction.add(source);
      if (name === "exec") inTransaction.delete(source);
      const keys = args
        .slice(1)
        .filter((a) => a.includes("{dave@localhost}") || a.includes("{scram}"));
      if (keys.length === 0) return;
      const script = name === "evalsha" ? (scriptBySha.get(String(args[1])) ?? "?") : "";
      commands.push(
        `${inTransaction.has(source) ? "in MULTI " : ""}${name}${script && ` ${script}`} ${keys[0]}`,
      );
    });
    try {
      await login(h.connId(0), "dave");
    } finally {
      await monitor.stopWhenCaughtUp(admin);
    }
    report(`one login's commands on the user's keys and the stand-in key (${commands.length}):`);
    report(commands.join(", "));
    const count = (pattern: RegExp) => commands.filter((c) => pattern.test(c)).length;
    assert.equal(count(/^in MULTI/), 0, "no transaction");
    assert.equal(count(/^get .*:account$/), 1, "the account read once");
    assert.equal(count(/^get .*standinkey$/), 1, "the stand-in key read once");
    assert.equal(count(/^set .*standinkey$/), 0, "the stand-in key exists: not written");
    assert.equal(count(/^evalsha ROSTER_READ .*:roster$/), 2, "the roster: presence and query");
  });

  it("acknowledges a unit that writes no snapshot (chat) on its own, as before", async () => {
    const bob = h.connId(0);
    await login(bob, "bob");
    const carol = h.connId(0);
    await login(carol, "carol");
    const counted = await countScripts(server.url, admin);
    try {
      const sent = await h.send(
        carol,
        `<message xmlns="jabber:client" type="chat" to="bob@localhost/desk"><body>hi</body></message>`,
      );
      await h.waitFrame(bob, (f) => f.includes("<body>hi</body>"), "carol's message");
      await until(
        () => acknowledgedUpTo(admin, KEYS.shardInbox(0), sent),
        "carol's message acknowledged",
      );
    } finally {
      await counted.stop();
    }
    const byName = [...counted.calls].map(([name, n]) => `${name} ${n}`).join(", ");
    assert.equal(counted.calls.get("FENCED_SNAPSHOT_WRITE") ?? 0, 0, byName);
    assert.equal(
      (counted.calls.get("FENCED_XACK") ?? 0) + (counted.calls.get("FENCED_XACK_MANY") ?? 0),
      1,
      byName,
    );
  });

  it("stores neither the snapshot nor the acknowledgement while the snapshot cannot be written", async () => {
    const shard = 1;
    const connId = h.connId(shard);
    const rejectedBefore = await rejectedScriptCalls(admin);
    await revokeKeyFromDefault(admin, KEYS.snapshot(shard));
    let opened: string;
    try {
      opened = await h.open(connId);
      // The unit's one write was refused (NOPERM, as a lost connection or a full Redis would
      // fail it) at least once: the unit is rolled back and tried again, its entry pending.
      await until(
        async () => (await rejectedScriptCalls(admin)) > rejectedBefore,
        "the refused snapshot write",
      );
      assert.equal(await admin.hget(KEYS.snapshot(shard), connId), null);
      const pending = (await admin.xpending(
        KEYS.shardInbox(shard),
        "session",
        opened,
        opened,
        1,
      )) as unknown[];
      assert.equal(pending.length, 1, "the entry stays pending");
    } finally {
      await restoreDefault(admin);
    }
    await until(
      () => acknowledgedUpTo(admin, KEYS.shardInbox(shard), opened),
      "the entry acknowledged once the write goes through",
    );
    assert.ok(await admin.hget(KEYS.snapshot(shard), connId), "with its snapshot");
  });
});

/** Script calls Redis refused before running them (ACL NOPERM), by INFO commandstats. */
async function rejectedScriptCalls(admin: Redis): Promise<number> {
  const info = await admin.info("commandstats");
  const line = info.split("\n").find((l) => l.startsWith("cmdstat_evalsha:"));
  return Number(/rejected_calls=(\d+)/.exec(line ?? "")?.[1] ?? 0);
}
