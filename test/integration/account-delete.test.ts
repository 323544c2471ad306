// Account deletion (session/admin/delete-account.ts, what `megaphone user del` runs) against the
// real session tier on a private Redis (helpers/session-harness.ts): live connections end with
// not-authorized, contacts get their subscriptions ended and a roster push removing the user,
// and an account re-created under the same name starts with an empty roster.
import assert from "node:assert/strict";
import { parseConnId } from "../../services/shared/conn-id.js";
import { silentLogger } from "../../services/shared/log.js";
import type { RosterItem } from "../../services/shared/stores/roster/roster-store.js";
import { AdminContext } from "../../services/session/admin/admin-context.js";
import { deleteAccount } from "../../services/session/admin/delete-account.js";
import { until } from "../helpers/poll.js";
import { startRedis, type RedisServer } from "../helpers/redis-server.js";
import { SessionHarness } from "../helpers/session-harness.js";

const ALICE = "alice@localhost";
const BOB = "bob@localhost";
const ROSTER_GET = (id: string) =>
  `<iq xmlns="jabber:client" type="get" id="${id}"><query xmlns="jabber:iq:roster"/></iq>`;

function both(jid: string): RosterItem {
  return { jid, subscription: "both", groups: [] };
}

describe("account deletion against the real session tier", function () {
  this.timeout(20000);
  let server: RedisServer;
  let harness: SessionHarness | undefined;
  let db = 0;

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    await harness?.stop();
    harness = undefined;
  });

  /** alice and bob, each in the other's roster with subscription both; the session started. */
  async function friends(waitMs = 5000): Promise<SessionHarness> {
    db++;
    const h = await SessionHarness.create({
      redis: `${server.url}/${db}`,
      config: { accountDeleteWaitMs: waitMs },
    });
    harness = h;
    await h.addUser(ALICE, "alice-pw");
    await h.addUser(BOB, "bob-pw");
    const max = h.config.rosterMaxItems;
    assert.ok((await h.backend.rosters.replaceItem(ALICE, BOB, undefined, both(BOB), max)).ok);
    assert.ok((await h.backend.rosters.replaceItem(BOB, ALICE, undefined, both(ALICE), max)).ok);
    await h.startSession();
    return h;
  }

  /** Logs `user` in, gets the roster (an interested resource) and sends initial presence. */
  async function online(h: SessionHarness, user: string, resource: string): Promise<string> {
    const connId = h.connId(0);
    await h.login(connId, user, `${user}-pw`, resource);
    await h.send(connId, ROSTER_GET("r1"));
    await h.waitFrame(connId, (f) => f.includes('id="r1"'), "roster result");
    await h.send(connId, `<presence xmlns="jabber:client"/>`);
    await h.waitFrame(
      connId,
      (f) => f.startsWith("<presence") && f.includes(`to="${user}@localhost/${resource}"`),
      "own presence",
    );
    return connId;
  }

  function adminContext(h: SessionHarness): AdminContext {
    return new AdminContext({
      config: h.config,
      log: silentLogger,
      stores: h.backend,
      bus: h.backend.bus,
    });
  }

  it("ends alice's connection with not-authorized and removes her from bob's roster with a push", async () => {
    const h = await friends();
    const bob = await online(h, "bob", "phone");
    const alice = await online(h, "alice", "desk");
    await h.waitFrame(bob, (f) => f.includes(`from="${ALICE}/desk"`), "alice's presence at bob");

    const result = await deleteAccount(adminContext(h), ALICE);
    assert.deepEqual(result, { existed: true, kicked: 1, unboundHere: 0, contacts: 1 });

    await h.waitFrame(
      alice,
      (f) => f.includes("<not-authorized"),
      "the not-authorized stream error",
    );
    await h.waitPacket((p) => p.k === "close" && p.c === alice, "the close of alice's socket");
    await h.waitFrame(
      bob,
      (f) => f.includes('type="unavailable"') && f.includes(`from="${ALICE}/desk"`),
      "alice's unavailable at bob",
    );
    const push = await h.waitFrame(
      bob,
      (f) => f.includes(`jid="${ALICE}"`) && f.includes('subscription="remove"'),
      "the roster push removing alice",
    );
    assert.match(push, /^<iq [^>]*type="set"/);
    assert.equal(await h.backend.rosters.getItem(BOB, ALICE), undefined);
    assert.deepEqual(await h.backend.routes.list(ALICE), []);
    const shard = parseConnId(alice).shard;
    await until(
      async () => !(await h.backend.snapshots.loadShard(shard)).has(alice),
      "alice's snapshot deleted",
    );
    assert.deepEqual(await h.backend.rosters.get(ALICE), { version: "0", items: [] });
    assert.equal(await h.backend.accounts.get(ALICE), undefined);

    // Re-created, alice starts from nothing: an empty roster at version 0, and bob stays apart.
    await h.addUser(ALICE, "alice-pw");
    const again = h.connId(1);
    await h.login(again, "alice", "alice-pw", "desk");
    await h.send(again, ROSTER_GET("r2"));
    const roster = await h.waitFrame(again, (f) => f.includes('id="r2"'), "the new roster");
    assert.match(roster, /<query xmlns="jabber:iq:roster" ver="0"\/>/);
  });

  it("unbinds itself what a stopped session did not end in time; the kick ends it later", async () => {
    const h = await friends(200);
    const bob = await online(h, "bob", "phone");
    const alice = await online(h, "alice", "desk");
    await h.stopSession();

    const result = await deleteAccount(adminContext(h), ALICE);
    assert.deepEqual(result, { existed: true, kicked: 1, unboundHere: 1, contacts: 1 });
    assert.deepEqual(await h.backend.routes.list(ALICE), []);
    assert.equal(await h.backend.rosters.getItem(BOB, ALICE), undefined);

    await h.startSession();
    await h.waitFrame(
      alice,
      (f) => f.includes("<not-authorized"),
      "the not-authorized stream error",
    );
    await h.waitFrame(
      bob,
      (f) => f.includes(`jid="${ALICE}"`) && f.includes('subscription="remove"'),
      "the roster push removing alice, read from bob's inbox",
    );
  });
});
