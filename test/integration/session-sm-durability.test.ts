// XEP-0198 sessions on the session tier against Redis, with the test in the edge's place
// (helpers/session-harness.ts): what a crash of the session member may not lose. A stanza
// another connection sends a session with stream management changes that session's stored
// state (its count of stanzas sent, XEP-0198 §4): it is stored (the session saved by the
// sender's unit holding its turn, or the stanza in the session's inbox when that turn is busy)
// before the sender's entry is acknowledged or its snapshot marks the entry applied, so the
// next owner counts it, and a resumption with the client's h succeeds and resends what the
// client never read. A stanza delivered to it again (its sender's entry applied again) is
// counted once.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { originDigest } from "../../services/shared/bus/origin.js";
import type { EdgePacket } from "../../services/shared/bus/packets.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import {
  sendersSnapshotPast,
  stopWithRecipientRefused,
  unacknowledged,
} from "../helpers/crash-window.js";
import { metricInText } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { acknowledgedUpTo, connectAdmin } from "../helpers/redis-admin.js";
import { startRedis, type RedisServer } from "../helpers/redis-server.js";
import { OPEN_FRAME, SessionHarness, plainAuth } from "../helpers/session-harness.js";

const KEYS = redisKeys();
const HELD_DELIVERIES = 'megaphone_session_sm_local_deliveries_total{path="held"}';
const SM = "urn:xmpp:sm:3";
const isStanza = (frame: string) => /^<(message|presence|iq)[\s/>]/.test(frame);
const bodyOf = (frame: string) => /<body>([^<]*)<\/body>/.exec(frame)?.[1];
const bodies = (frames: string[]) => frames.map(bodyOf).filter((b): b is string => b !== undefined);

describe("session tier: XEP-0198 sessions survive a crash of their member", function () {
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

  /**
   * What the client of `connId` read: the frames its edge wrote to the socket, where a frame
   * whose origin was written before (an entry applied again) is dropped, as the edge does
   * (bus/origin.ts).
   */
  function received(connId: string): string[] {
    const origins = new Set<string>();
    const frames: string[] = [];
    for (const p of h.packets as EdgePacket[]) {
      if (p.k !== "data" || p.c !== connId) continue;
      if (p.o !== undefined) {
        if (origins.has(p.o)) continue;
        origins.add(p.o);
      }
      frames.push(p.d);
    }
    return frames;
  }

  /** Stanzas delivered to an XEP-0198 session with its turn held by the sender's unit. */
  async function heldDeliveries(): Promise<number> {
    const text = (await h.session?.metrics.metrics()) ?? "";
    return metricInText(text, HELD_DELIVERIES) || 0;
  }

  /** Logs `user` in on `connId` as `resource` and enables stream management; returns its id. */
  async function loginWithSm(connId: string, user: string, resource: string, resume: boolean) {
    await h.addUser(`${user}@localhost`, `${user}-pw`);
    await h.login(connId, user, `${user}-pw`, resource);
    await h.send(connId, `<enable xmlns="${SM}"${resume ? ` resume="true"` : ""}/>`);
    const enabled = await h.waitFrame(connId, (f) => f.startsWith("<enabled"), "<enabled/>");
    return /id="([^"]+)"/.exec(enabled)?.[1] as string;
  }

  /**
   * `user` logs in on a new socket and resumes session `previd` with the h its client counted
   * (XEP-0198 §5): the answer, a `rename` of the new socket (resumed) or a `<failed/>` frame.
   */
  async function resume(user: string, previd: string, hOfClient: number): Promise<EdgePacket> {
    const resuming = h.connId(2);
    await h.open(resuming);
    await h.send(resuming, OPEN_FRAME);
    await h.waitFrame(resuming, (f) => f.includes("<mechanism>PLAIN<"), "SASL features");
    await h.send(resuming, plainAuth(user, `${user}-pw`));
    await h.waitFrame(resuming, (f) => f.startsWith("<success"), "SASL success");
    await h.send(resuming, OPEN_FRAME);
    await h.waitFrame(resuming, (f) => f.includes(`<sm xmlns="${SM}"/>`), "the sm feature");
    await h.send(resuming, `<resume xmlns="${SM}" previd="${previd}" h="${hOfClient}"/>`);
    return h.waitPacket(
      (p) =>
        (p.k === "rename" && p.c === resuming) ||
        (p.k === "data" && p.c === resuming && p.d.startsWith("<failed")),
      "the answer to <resume/>",
    );
  }

  /** The stanzas `frames` holds after <enabled/>: what the client's h counts (XEP-0198 §4). */
  const countedByClient = (frames: string[]) =>
    frames.slice(frames.findIndex((f) => f.startsWith("<enabled")) + 1).filter(isStanza).length;

  const chat = (to: string, body: string) =>
    `<message xmlns="jabber:client" type="chat" to="${to}"><body>${body}</body></message>`;

  it("stores the stanza another connection sends an XEP-0198 session before acknowledging it", async () => {
    const erin = h.connId(0);
    await loginWithSm(erin, "erin", "phone", true);
    const frank = h.connId(1);
    await h.addUser("frank@localhost", "frank-pw");
    await h.login(frank, "frank", "frank-pw", "desk");
    const sent = await h.send(
      frank,
      `<message xmlns="jabber:client" type="chat" to="erin@localhost/phone" id="s1"><body>kept</body></message>`,
    );
    await until(
      () => acknowledgedUpTo(admin, KEYS.shardInbox(1), sent),
      "frank's message acknowledged",
    );
    // Acknowledged: a member dying now must find the message counted for erin, in her shard's
    // inbox until her session acknowledges it there, and in her snapshot's count from then on.
    const route = (await admin.xrange(KEYS.shardInbox(0), "-", "+")).find(([, fields]) =>
      fields.some((field) => field.includes('id="s1"')),
    );
    if (!route || !(await unacknowledged(admin, KEYS.shardInbox(0), route[0]))) {
      const stored = JSON.parse((await admin.hget(KEYS.snapshot(0), erin)) ?? "{}") as {
        sm?: { sent: number };
      };
      assert.equal(
        stored.sm?.sent,
        1,
        `the message is neither in erin's inbox nor counted in her snapshot: ${JSON.stringify(stored.sm)}`,
      );
    }
    await h.waitFrame(erin, (f) => f.includes('id="s1"'), "the message");
  });

  it("counts once a stanza routed to an XEP-0198 session twice (its sender's entry applied again)", async () => {
    const gina = h.connId(0);
    const previd = await loginWithSm(gina, "gina", "phone", true);
    // A sender's entry applied again after a crash routes its stanza again, with the origin
    // its first application gave it (bus/origin.ts); then a marker, with an origin of its own.
    const route = (to: string, body: string, origin: string) =>
      h.backend.bus.toShard(0, {
        k: "route",
        c: to,
        d: `<message xmlns="jabber:client" type="chat" from="hal@localhost/desk" to="gina@localhost/phone"><body>${body}</body></message>`,
        o: origin,
      });
    await route(gina, "once", "e9.1.hal|1700000000000-0|0");
    await route(gina, "once", "e9.1.hal|1700000000000-0|0");
    await route(gina, "marker", "e9.1.hal|1700000000001-0|0");
    await until(() => bodies(received(gina)).includes("marker"), "the marker");
    const before = bodies(received(gina));
    // Written with its origin all the same, so that the edge drops a repeat it alone sees.
    const once = h.packets.find((p) => p.c === gina && p.k === "data" && bodyOf(p.d) === "once");
    assert.equal(once?.k === "data" && once.o, "e9.1.hal|1700000000000-0|0");
    // Her client acknowledges what it read (§4: an ack it may send unrequested, as it answers
    // the server's <r/>); the server must have counted as many.
    const hOfClient = countedByClient(received(gina));
    await h.send(gina, `<a xmlns="${SM}" h="${hOfClient}"/>`);
    const snapshot = async () =>
      JSON.parse((await admin.hget(KEYS.snapshot(0), gina)) ?? "{}") as {
        sm?: { sent: number; acked: number; hibernateUntilMs?: number };
        recentOrigins?: string;
      };
    const stored = async () => (await snapshot()).sm;
    await until(async () => (await stored())?.acked === hOfClient, "her ack stored");
    const counted = (await stored())?.sent;
    const remembered = (await snapshot()).recentOrigins;
    // Her socket is lost; she resumes with her h: nothing she read may come again.
    await h.socketClosed(gina);
    await until(
      async () => (await stored())?.hibernateUntilMs !== undefined,
      "her session hibernates",
    );
    const answer = await resume("gina", previd, hOfClient);
    let after: string[] = [];
    if (answer.k === "rename") {
      const moved = answer.d;
      await h.waitFrame(moved, (f) => f.startsWith("<resumed"), "<resumed/>");
      await route(moved, "after", "e9.1.hal|1700000000002-0|0");
      await until(() => bodies(received(moved)).includes("after"), "the last marker");
      after = bodies(received(moved));
    }
    const sent = ["once", "marker", "after"];
    const got = [...before, ...after];
    const deliveredOnce = sent.filter((b) => got.filter((r) => r === b).length === 1);
    const duplicates = got.length - new Set(got).size;
    console.log(
      `      sent ${sent.length} (one routed twice), delivered once ${deliveredOnce.length}, duplicates ${duplicates}` +
        ` (the client's h ${hOfClient}, the server's count ${counted})`,
    );
    assert.equal(counted, hOfClient, "the server counted what the client read");
    // Only routed deliveries are remembered: her own entries' answers never come again.
    assert.equal(
      remembered,
      [originDigest("e9.1.hal|1700000000000-0|0"), originDigest("e9.1.hal|1700000000001-0|0")].join(
        " ",
      ),
    );
    assert.equal(answer.k, "rename", "resumed");
    assert.deepEqual(got, sent, "every message once, in order");
  });

  it("loses no stanza another connection sent an XEP-0198 session when the member dies before storing the session", async () => {
    const N = 6;
    const K = 3;
    // carol: resumable stream management, on shard 0.
    const carol = h.connId(0);
    const previd = await loginWithSm(carol, "carol", "phone", true);
    await until(
      async () => (await admin.hget(KEYS.snapshot(0), carol))?.includes(previd) === true,
      "carol's stream management stored",
    );
    // dave's units store his snapshot (XEP-0198 counts what he sends), which vouches for
    // every entry up to its lastEntryId: they are never applied again.
    const dave = h.connId(1);
    await loginWithSm(dave, "dave", "desk", false);
    const toCarol = (body: string) => chat("carol@localhost/phone", body);
    const sent = Array.from({ length: N }, (_, i) => `m-${i + 1}`);
    // carol's connection can be stored no more (her shard's snapshots); dave's can. dave's
    // unit holds carol's turn (LiveContext.holdForDelivery), fails to save her and so stores
    // nothing of its own, nor writes her socket anything. The member dies then.
    const heldBefore = await heldDeliveries();
    const ids = await stopWithRecipientRefused(h, admin, KEYS, {
      sender: dave,
      senderShard: 1,
      recipientShard: 0,
      frames: sent.map(toCarol),
      stopWhen: {
        met: async () => (await heldDeliveries()) > heldBefore,
        what: "dave's unit holding carol's turn",
      },
    });
    assert.deepEqual(bodies(received(carol)), [], "nothing written to carol unsaved");
    // Stopping, the member gives carol's shard up first: dave's unit, tried again, then finds
    // it served elsewhere and routes m-1 through her inbox, after which his snapshot may be
    // stored. Either way m-1 is stored for carol before dave's snapshot counts it.
    if (await sendersSnapshotPast(admin, KEYS, dave, 1, ids[0])) {
      const route = (await admin.xrange(KEYS.shardInbox(0), "-", "+")).find(([, fields]) =>
        fields.some((field) => field.includes("<body>m-1</body>")),
      );
      assert.ok(
        route && (await unacknowledged(admin, KEYS.shardInbox(0), route[0])),
        "dave's snapshot counts m-1, which is neither in carol's state nor in her inbox",
      );
    }
    // The next member takes the shards over. carol's client reads up to m-K, then her socket
    // is lost: what was written to it after m-K never reached her.
    await h.startSession("s2");
    await until(() => bodies(received(carol)).includes(`m-${K}`), `carol reads m-${K}`);
    const frames = received(carol);
    const read = frames.slice(0, frames.findIndex((f) => bodyOf(f) === `m-${K}`) + 1);
    const before = bodies(read);
    const hOfClient = countedByClient(read);
    await h.socketClosed(carol);
    await until(
      async () =>
        (await admin.hget(KEYS.snapshot(0), carol))?.includes("hibernateUntilMs") === true,
      "carol's session hibernates",
    );
    // She resumes on a new socket with the h her client counted (XEP-0198 §5).
    const answer = await resume("carol", previd, hOfClient);
    let after: string[] = [];
    if (answer.k === "rename") {
      const moved = answer.d;
      await h.waitFrame(moved, (f) => f.startsWith("<resumed"), "<resumed/>");
      // Resent: what she did not read. Then dave says when he is done.
      sent.push("marker");
      await h.send(dave, toCarol("marker"));
      await until(() => bodies(received(moved)).includes("marker"), "the marker");
      after = bodies(received(moved));
    }
    const got = [...before, ...after];
    const once = sent.filter((b) => got.filter((r) => r === b).length === 1);
    const lost = sent.filter((b) => !got.includes(b));
    const duplicates = got.length - new Set(got).size;
    console.log(
      `      sent ${sent.length}, delivered once ${once.length}, lost ${lost.length}, duplicates ${duplicates}` +
        ` (read ${before.length} before the socket was lost, h=${hOfClient}; ${after.length} after the resumption)`,
    );
    assert.equal(
      answer.k,
      "rename",
      `the resumption failed: ${answer.k === "data" ? answer.d : ""}`,
    );
    assert.deepEqual(got, sent, "every message once, in order");
  });
});
