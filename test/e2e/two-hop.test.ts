// Two-hop delivery (docs/capacity.md) through the real mesh: Redis, two session members, real
// clients. Alice's connections land on session 1 (edge 1), the recipients' on session 2, so
// every message crosses members: written by session 1 straight to the recipient's edge when
// the recipient's binding allows it, else through session 2's shard inbox (the third hop).
// Each test counts what arrived (once, in order) and which path session 1 took.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { shardOfSmId } from "../../services/session/features/sm/sm-state.js";
import { Mesh, metricValue, type EdgeProcess, type SessionProcess } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { RawClient } from "../helpers/raw-client.js";
import { connect } from "../helpers/redis-server.js";
import { report } from "../helpers/report.js";
import { TestUser, xml } from "../helpers/xmpp-client.js";

const KEYS = redisKeys();
const NS_SM = "urn:xmpp:sm:3";
const bodyOf = (frame: string) => /<body>([^<]*)<\/body>/.exec(frame)?.[1];

/** Session 1's direct-write outcomes and session 2's applied routes, at one moment. */
interface Paths {
  edge: number;
  route: number;
  undelivered: number;
  held: number;
  /** `route` entries session 2 applied: stanzas that took the third hop. */
  thirdHop: number;
}

describe("e2e: two-hop delivery between session members", function () {
  this.timeout(60000);
  let mesh: Mesh;
  let edge1: EdgeProcess;
  let edge2: EdgeProcess;
  let session1: SessionProcess;
  let session2: SessionProcess;
  let admin: Redis;
  const cleanup: (() => unknown)[] = [];

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({
      shardCount: 8,
      env: {
        MEGAPHONE_EDGE_HEARTBEAT_INTERVAL_MS: "250",
        MEGAPHONE_EDGE_HEARTBEAT_TTL_MS: "1500",
      },
    });
    [session1, session2] = await Promise.all([
      mesh.session("s1", "0-3"),
      mesh.session("s2", "4-7"),
    ]);
    [edge1, edge2] = await Promise.all([mesh.edge("e1", "0-3"), mesh.edge("e2", "4-7")]);
    for (const name of ["alice", "bob1", "bob2", "bob3", "bob4"])
      await mesh.addUser(`${name}@localhost`, `${name}-pw`);
    admin = connect(mesh.redis.url);
  });

  afterEach(async () => {
    for (const stop of cleanup.splice(0)) await stop();
  });

  after(async () => {
    admin?.disconnect();
    await mesh?.stop();
  });

  async function paths(): Promise<Paths> {
    const direct = async (path: string) =>
      (await metricValue(
        session1.httpPort,
        `megaphone_session_direct_deliveries_total{path="${path}"}`,
      )) || 0;
    return {
      edge: await direct("edge"),
      route: await direct("route"),
      undelivered: await direct("undelivered"),
      held: await direct("held"),
      thirdHop:
        (await metricValue(session2.httpPort, 'megaphone_session_entries_total{kind="route"}')) ||
        0,
    };
  }

  const delta = (before: Paths, after: Paths): Paths => ({
    edge: after.edge - before.edge,
    route: after.route - before.route,
    undelivered: after.undelivered - before.undelivered,
    held: after.held - before.held,
    thirdHop: after.thirdHop - before.thirdHop,
  });

  const format = (p: Paths) =>
    `session 1 wrote ${p.edge} to the edge, routed ${p.route} after its check, returned ${p.undelivered} undelivered, held back ${p.held}; session 2 applied ${p.thirdHop} routes`;

  /** The edge address recorded in a binding, once it is there (or "" when it goes). */
  async function bindingEdge(bare: string, resource: string): Promise<string | undefined> {
    const json = await admin.hget(KEYS.resources(bare), resource);
    return json ? (JSON.parse(json) as { edge?: string }).edge : undefined;
  }

  /** A recipient without XEP-0198 (a raw client), available on `edge`. */
  async function availableRecipient(edge: EdgeProcess, name: string): Promise<RawClient> {
    const client = await RawClient.connect(edge.url);
    cleanup.push(() => client.terminate());
    await client.login(name, `${name}-pw`, "phone");
    client.answerPings();
    client.send("<presence xmlns='jabber:client'/>");
    await until(
      async () => (await bindingEdge(`${name}@localhost`, "phone")) !== undefined,
      `${name}'s binding to name its edge`,
    );
    return client;
  }

  async function sender(): Promise<TestUser> {
    const alice = await TestUser.connect({
      service: edge1.url,
      username: "alice",
      password: "alice-pw",
    });
    cleanup.push(() => alice.stop());
    return alice;
  }

  const chat = (to: string, body: string) =>
    xml("message", { to, type: "chat", id: body }, xml("body", {}, body));

  it("writes a message for a connection on the other member straight to its edge, delivered once", async () => {
    const bob = await availableRecipient(edge2, "bob1");
    const alice = await sender();
    const before = await paths();
    await alice.send(chat("bob1@localhost", "hello"));
    await bob.waitFrame((f) => bodyOf(f) === "hello", "alice's message");
    await alice.ping();
    const d = delta(before, await paths());
    const delivered = bob.frames.filter((f) => bodyOf(f) === "hello").length;
    report(`delivered ${delivered}; ${format(d)}`);
    assert.equal(delivered, 1);
    assert.equal(d.edge, 1, "the direct path");
    assert.equal(d.thirdHop, 0, "nothing through session 2's shard inbox");
  });

  it("keeps alice's order over a burst whose recipient toggles its presence and then enables XEP-0198", async () => {
    const total = 200;
    const bob = await availableRecipient(edge2, "bob2");
    const bobJid = "bob2@localhost/phone";
    const alice = await sender();
    // bob changes what his binding allows while the burst arrives: unavailable (third hop),
    // available again (direct once his presence is stored), and at last <enable/> for good.
    let toggles = 0;
    bob.ws.on("message", (data) => {
      const body = bodyOf(data.toString());
      if (!body?.startsWith("m")) return;
      const n = Number(body.slice(1));
      if (n % 40 === 10) {
        bob.send("<presence xmlns='jabber:client' type='unavailable'/>");
        toggles++;
      } else if (n % 40 === 25) {
        bob.send("<presence xmlns='jabber:client'/>");
        toggles++;
      } else if (n === 165) bob.send(`<enable xmlns='${NS_SM}'/>`);
    });
    const before = await paths();
    // In chunks, each one sent once bob has the one before, so that his changes land while
    // the next arrives.
    for (let i = 0; i < total; i += 10) {
      for (let j = i; j < i + 10; j++) void alice.send(chat(bobJid, `m${j}`));
      await bob.waitFrame((f) => bodyOf(f) === `m${i + 9}`, `m${i + 9}`, 10000);
    }
    await bob.waitFrame((f) => bodyOf(f) === `m${total - 1}`, "the last message", 15000);
    const enabled = await bob.waitFrame((f) => f.includes("<enabled"), "<enabled/>");
    const frames = bob.frames;
    const enabledAfter = frames
      .slice(0, frames.indexOf(enabled))
      .filter((f) => bodyOf(f)?.startsWith("m")).length;
    const d = delta(before, await paths());

    const bodies = frames.map(bodyOf).filter((b): b is string => b?.startsWith("m") === true);
    const unique = new Set(bodies);
    const lost = Array.from({ length: total }, (_, i) => `m${i}`).filter((b) => !unique.has(b));
    const duplicates = bodies.length - unique.size;
    let outOfOrder = 0;
    for (let i = 1; i < bodies.length; i++)
      if (Number(bodies[i].slice(1)) < Number(bodies[i - 1].slice(1))) outOfOrder++;
    // XEP-0198 counts every stanza from <enabled/> on: each is in bob's unacked queue.
    const smId = /id="([^"]+)"/.exec(enabled)?.[1] as string;
    const afterEnabled = frames
      .slice(frames.indexOf(enabled))
      .filter(
        (f) => f.startsWith("<message") || f.startsWith("<presence") || f.startsWith("<iq"),
      ).length;
    const smQueue = KEYS.smQueue(shardOfSmId(smId, 8) as number, smId);
    // Stored in the unit that wrote them to the edge, possibly on another Redis connection.
    await until(async () => (await admin.hlen(smQueue)) >= afterEnabled, "the XEP-0198 queue");
    const queued = await admin.hlen(smQueue);
    report(
      `sent ${total}: delivered ${bodies.length} (${unique.size} distinct), lost ${lost.length}, duplicates ${duplicates}, out of order ${outOfOrder}; bob toggled presence ${toggles} times, <enabled/> after ${enabledAfter} messages; ${afterEnabled} stanzas after <enabled/>, ${queued} in his XEP-0198 queue`,
    );
    report(format(d));
    assert.deepEqual(lost, []);
    assert.equal(duplicates, 0);
    assert.equal(outOfOrder, 0, bodies.join(" "));
    assert.ok(d.edge > 0, "some went directly");
    assert.ok(d.thirdHop > 0, "some took the third hop");
    assert.equal(queued, afterEnabled, "XEP-0198 saw every stanza written after <enabled/>");
    assert.equal(await bindingEdge("bob2@localhost", "phone"), undefined);
  });

  it("sends every stanza for a recipient with XEP-0198 through its session (the third hop)", async () => {
    const count = 20;
    const bob = await TestUser.connect({
      service: edge2.url,
      username: "bob3",
      password: "bob3-pw",
      resource: "phone",
    });
    cleanup.push(() => bob.stop());
    const sm = (bob.xmpp as unknown as { streamManagement: { enabled: boolean; inbound: number } })
      .streamManagement;
    await until(() => sm.enabled, "stream management enabled");
    await bob.send(xml("presence"));
    await bob.ping();
    const alice = await sender();
    const before = await paths();
    const inboundBefore = sm.inbound;
    for (let i = 0; i < count; i++) void alice.send(chat("bob3@localhost", `sm${i}`));
    const last = await bob.waitFor(
      (el) => el.getChildText("body") === `sm${count - 1}`,
      "the last message",
    );
    await alice.ping();
    const d = delta(before, await paths());
    // waitFor took the last one out of the inbox: the others are there, in order.
    const bodies = bob.inbox
      .filter((el) => el.is("message"))
      .map((el) => el.getChildText("body"))
      .concat([last.getChildText("body")]);
    const counted = sm.inbound - inboundBefore;
    report(
      `sent ${count}: delivered ${bodies.length}, counted by bob's XEP-0198 h ${counted}; ${format(d)}`,
    );
    assert.equal(await bindingEdge("bob3@localhost", "phone"), undefined, "never offered");
    assert.deepEqual(
      bodies,
      Array.from({ length: count }, (_, i) => `sm${i}`),
    );
    assert.equal(d.edge, 0);
    assert.equal(d.thirdHop, count, "session 2 applied (and counted) every one");
    assert.ok(counted >= count);
  });

  it("gives back what it wrote to a killed edge: every message stored offline or bounced, once", async () => {
    const count = 20;
    const edge3 = await mesh.edge("e3", "4-7");
    const bare = "bob4@localhost";
    const bob = await availableRecipient(edge3, "bob4");
    const alice = await sender();
    const before = await paths();
    await edge3.stop("SIGKILL");
    for (let i = 0; i < count; i++) void alice.send(chat(bare, `k${i}`));
    await alice.ping();
    const offlineIds = async () =>
      (await admin.lrange(KEYS.offline(bare), 0, -1)).map((xml) => bodyOf(xml) ?? "");
    const bouncedIds = () =>
      alice.inbox
        .filter((el) => el.is("message") && el.attrs.type === "error")
        .map((el) => el.attrs.id);
    await until(
      async () => (await offlineIds()).length + bouncedIds().length >= count,
      "every message stored or bounced",
      20000,
    );
    await alice.ping();
    const d = delta(before, await paths());
    const offline = await offlineIds();
    const bounced = bouncedIds();
    const live = bob.frames.map(bodyOf).filter((b) => b?.startsWith("k"));
    const outcomes = [...live, ...offline, ...bounced];
    const unaccounted = Array.from({ length: count }, (_, i) => `k${i}`).filter(
      (id) => !outcomes.includes(id),
    );
    const duplicates = outcomes.length - new Set(outcomes).size;
    report(
      `sent ${count}: delivered live ${live.length}, stored offline ${offline.length}, bounced ${bounced.length}; unaccounted ${unaccounted.length}, duplicates ${duplicates}`,
    );
    report(format(d));
    assert.deepEqual(unaccounted, []);
    assert.equal(duplicates, 0, outcomes.join(" "));
  });
});
