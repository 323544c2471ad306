// BOSH connections (XEP-0124) on the session tier against Redis, with the test in the edge's
// place (helpers/session-harness.ts): what a crash of the session member may not lose. The
// sid's secret comes from the creation entry, so a creation applied again gives the same sid;
// a stanza another connection sends a BOSH connection is stored (in the BOSH connection's
// inbox) before the sender's entry is acknowledged or its snapshot marks the entry applied.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { parse } from "ltx";
import type { EdgePacket } from "../../services/shared/bus/packets.js";
import { parseConnId } from "../../services/shared/conn-id.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { NS_XBOSH, bodyXml } from "../helpers/bosh-client.js";
import { stopWithRecipientRefused, unacknowledged } from "../helpers/crash-window.js";
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

  /**
   * Creates a BOSH session (first rid 100, wait 30 s, hold 1) and logs `user` in as resource
   * `bosh`; returns its sid. Every request is answered: none is left held.
   */
  async function boshLogin(connId: string, user: string, password: string): Promise<string> {
    const secret = `${user}sSecret`;
    const sid = `${connId}~${secret}`;
    const creation = {
      rid: "100",
      to: "localhost",
      wait: "30",
      hold: "1",
      "xmlns:xmpp": NS_XBOSH,
      "xmpp:version": "1.0",
    };
    await request(connId, creation, "", secret);
    const auth = await request(connId, { rid: "101", sid }, plainAuth(user, password));
    assert.match(auth, /<success/);
    await request(connId, { rid: "102", sid, "xmlns:xmpp": NS_XBOSH, "xmpp:restart": "true" });
    const bound = await request(
      connId,
      { rid: "103", sid },
      `<iq xmlns="jabber:client" type="set" id="b"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>bosh</resource></bind></iq>`,
    );
    assert.match(bound, new RegExp(`${user}@localhost/bosh`));
    return sid;
  }

  it("queues a stanza routed to a BOSH connection once when its sender's entry is applied again", async () => {
    await h.addUser("erin@localhost", "erin-pw");
    const erin = h.connId(0);
    const sid = await boshLogin(erin, "erin", "erin-pw");
    // A sender's entry applied again after a crash routes its stanza again, with the origin
    // its first application gave it (bus/origin.ts); then a marker, with an origin of its own.
    const route = (body: string, origin: string) =>
      h.backend.bus.toShard(0, {
        k: "route",
        c: erin,
        d: `<message xmlns="jabber:client" type="chat" from="frank@localhost/desk" to="erin@localhost/bosh"><body>${body}</body></message>`,
        o: origin,
      });
    await route("once", "e9.1.frank|1700000000000-0|0");
    await route("once", "e9.1.frank|1700000000000-0|0");
    await route("marker", "e9.1.frank|1700000000001-0|0");
    const received: string[] = [];
    for (let rid = 104; !received.includes("marker"); rid++) {
      const answer = parse(await request(erin, { rid: String(rid), sid }));
      for (const m of answer.getChildren("message")) received.push(m.getChildText("body") ?? "");
    }
    assert.deepEqual(received, ["once", "marker"]);
  });

  it("stores the stanza another connection sends a BOSH connection before acknowledging it", async () => {
    const bob = h.connId(0);
    const sid = await boshLogin(bob, "bob", "bob-pw");
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
    // Acknowledged: a member dying now must find the message stored for bob, in his shard's
    // inbox until his session acknowledges it there, and in his snapshot from then on.
    const route = (await admin.xrange(KEYS.shardInbox(0), "-", "+")).find(([, fields]) =>
      fields.some((field) => field.includes('id="m1"')),
    );
    if (!route || !(await unacknowledged(admin, KEYS.shardInbox(0), route[0]))) {
      const stored = JSON.parse((await admin.hget(KEYS.snapshot(0), bob)) ?? "{}") as {
        bosh?: { out: string[]; sent: { body: string }[] };
      };
      const kept = [...(stored.bosh?.out ?? []), ...(stored.bosh?.sent ?? []).map((s) => s.body)];
      assert.ok(
        kept.some((frame) => frame.includes('id="m1"')),
        `the message is neither in bob's inbox nor in his snapshot: ${JSON.stringify(stored.bosh)}`,
      );
    }
    // And bob's next poll gets it.
    const next = await request(bob, { rid: "104", sid });
    assert.match(next, /<body>kept<\/body>/);
  });

  it("loses no stanza another connection sent a BOSH connection when the member dies before storing the BOSH connection", async () => {
    await h.addUser("carol@localhost", "carol-pw");
    await h.addUser("dave@localhost", "dave-pw");
    const carol = h.connId(0);
    const sid = await boshLogin(carol, "carol", "carol-pw");
    // dave's units store his snapshot (XEP-0198 counts what he sends), which vouches for
    // every entry up to its lastEntryId: they are never applied again.
    const dave = h.connId(1);
    await h.login(dave, "dave", "dave-pw", "desk");
    await h.send(dave, `<enable xmlns="urn:xmpp:sm:3"/>`);
    await h.waitFrame(dave, (f) => f.startsWith("<enabled"), "<enabled/>");
    const chat = (body: string) =>
      `<message xmlns="jabber:client" type="chat" to="carol@localhost/bosh"><body>${body}</body></message>`;
    const sent = ["m-1", "m-2", "m-3"];
    // carol's connection can be stored no more (her shard's snapshots); dave's can.
    await stopWithRecipientRefused(h, admin, KEYS, {
      sender: dave,
      senderShard: 1,
      recipientShard: 0,
      frames: sent.map(chat),
    });
    // The next member takes the shards over; carol polls, and dave says when he is done.
    await h.startSession("s2");
    sent.push("marker");
    await h.send(dave, chat("marker"));
    const received: string[] = [];
    for (let rid = 104; !received.includes("marker"); rid++) {
      const answer = parse(await request(carol, { rid: String(rid), sid }));
      for (const m of answer.getChildren("message")) received.push(m.getChildText("body") ?? "");
    }
    const once = sent.filter((b) => received.filter((r) => r === b).length === 1);
    const lost = sent.filter((b) => !received.includes(b));
    const duplicates = received.length - new Set(received).size;
    console.log(
      `      sent ${sent.length}, delivered once ${once.length}, lost ${lost.length}, duplicates ${duplicates}`,
    );
    assert.deepEqual(received, sent, "every message once, in order");
  });
});
