// BOSH connections (XEP-0124) on the session tier against Redis, with the test in the edge's
// place (helpers/session-harness.ts): what a crash of the session member may not lose. The
// sid's secret comes from the creation entry, so a creation applied again gives the same sid;
// a stanza another connection's unit queued in a BOSH connection's state is in that
// connection's snapshot before the sender's entry is acknowledged.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { parse } from "ltx";
import type { EdgePacket } from "../../services/shared/bus/packets.js";
import { parseConnId } from "../../services/shared/conn-id.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { NS_XBOSH, bodyXml } from "../helpers/bosh-client.js";
import { until } from "../helpers/poll.js";
import { acknowledgedUpTo, connectAdmin } from "../helpers/redis-admin.js";
import { startRedis, type RedisServer } from "../helpers/redis-server.js";
import { HARNESS_EDGE, SessionHarness, plainAuth } from "../helpers/session-harness.js";

const KEYS = redisKeys();

describe("session tier: BOSH connections survive a crash of their member", function () {
  this.timeout(20000);
  let server: RedisServer;
  let admin: Redis;
  let h: SessionHarness;

  before(async () => {
    server = await startRedis();
    admin = await connectAdmin(server.url, 1);
    h = await SessionHarness.create({ redis: `${server.url}/1` });
    await h.startSession("s1");
    await h.addUser("alice@localhost", "alice-pw");
    await h.addUser("bob@localhost", "bob-pw");
  });
  after(async () => {
    await h?.stop();
    admin?.disconnect();
    await server?.stop();
  });

  /** Sends one BOSH request of `connId` as the edge does; resolves with the session's answer. */
  async function request(
    connId: string,
    attrs: Record<string, string>,
    payload = "",
    secret?: string,
  ): Promise<string> {
    const packet = {
      k: "bosh" as const,
      c: connId,
      e: HARNESS_EDGE,
      d: bodyXml(attrs, payload),
      ...(secret === undefined ? {} : { s: secret }),
    };
    await h.backend.bus.toShard(parseConnId(connId).shard, packet);
    const answer = await h.waitPacket(
      (p: EdgePacket) => p.k === "bosh" && p.c === connId && p.r === attrs.rid,
      `the answer to rid ${attrs.rid}`,
    );
    return answer.k === "bosh" ? answer.d : "";
  }

  it("gives the sid the secret the creation entry carries", async () => {
    const conn = h.connId(0);
    const created = parse(
      await request(
        conn,
        {
          rid: "500",
          to: "localhost",
          wait: "30",
          hold: "1",
          "xmlns:xmpp": NS_XBOSH,
          "xmpp:version": "1.0",
        },
        "",
        "FromTheEdge_-1",
      ),
    );
    assert.equal(created.attrs.sid, `${conn}~FromTheEdge_-1`);
  });

  it("saves the stanza another connection queued for a BOSH connection before acknowledging it", async () => {
    const bob = h.connId(0);
    const secret = "bobsSecret";
    const sid = `${bob}~${secret}`;
    const creation = {
      rid: "100",
      to: "localhost",
      wait: "30",
      hold: "1",
      "xmlns:xmpp": NS_XBOSH,
      "xmpp:version": "1.0",
    };
    await request(bob, creation, "", secret);
    const auth = await request(bob, { rid: "101", sid }, plainAuth("bob", "bob-pw"));
    assert.match(auth, /<success/);
    await request(bob, { rid: "102", sid, "xmlns:xmpp": NS_XBOSH, "xmpp:restart": "true" });
    const bound = await request(
      bob,
      { rid: "103", sid },
      `<iq xmlns="jabber:client" type="set" id="b"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>bosh</resource></bind></iq>`,
    );
    assert.match(bound, /bob@localhost\/bosh/);
    // Every request of bob's is answered: none is held, so a message for him waits in his state.
    const alice = h.connId(1);
    await h.login(alice, "alice", "alice-pw", "desk");
    const sent = await h.send(
      alice,
      `<message xmlns="jabber:client" type="chat" to="bob@localhost/bosh" id="m1"><body>kept</body></message>`,
    );
    await until(
      () => acknowledgedUpTo(admin, KEYS.shardInbox(1), sent),
      "alice's message acknowledged",
    );
    // Acknowledged: a member dying now must find the message in bob's stored state.
    const stored = JSON.parse((await admin.hget(KEYS.snapshot(0), bob)) ?? "{}") as {
      bosh?: { out: string[]; sent: { body: string }[] };
    };
    const kept = [...(stored.bosh?.out ?? []), ...(stored.bosh?.sent ?? []).map((s) => s.body)];
    assert.ok(
      kept.some((frame) => frame.includes('id="m1"')),
      `the message is not in bob's snapshot: ${JSON.stringify(stored.bosh)}`,
    );
    // And bob's next poll gets it.
    const next = await request(bob, { rid: "104", sid });
    assert.match(next, /<body>kept<\/body>/);
  });
});
