// XEP-0198 across the mesh, with real processes: two sessions (shards 0-1 and 2-3) and edges
// that pin new sockets to one of them, so that a resume through "the other edge" also lands on
// the other session and the session must travel to it. Raw RFC 7395 clients show every frame.
// Each failure test counts every message alice sent: delivered before the drop, delivered after
// it (resent or new), stored offline; unaccounted and duplicated must both be zero.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { Mesh, type EdgeProcess } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { RawClient } from "../helpers/raw-client.js";
import { connect } from "../helpers/redis-server.js";
import { TestUser, isPresenceFrom, xml } from "../helpers/xmpp-client.js";

const KEYS = redisKeys();
const SM = "urn:xmpp:sm:3";
// The session-kill test resumes once the successor holds the killed member's shards, i.e. after
// SHARD_LEASE_TTL_MS: the window must outlast that with room for a loaded CI machine (a
// resumption that is applied after its deadline fails with <item-not-found/>, even when the
// client asked in time: README, known limits). Short enough that the expiry tests stay quick.
const RESUMPTION_TIMEOUT_MS = 6000;
const SHARD_LEASE_TTL_MS = 2000;
const HEARTBEAT_INTERVAL_MS = 250;
const HEARTBEAT_TTL_MS = 1500;
const MESSAGES = 30;
const SEND_INTERVAL_MS = 30;

const bodyOf = (frame: string) => /<body>(m-\d+)<\/body>/.exec(frame)?.[1];
const isStanza = (frame: string) => /^<(message|presence|iq)[\s/>]/.test(frame);
const bodies = (frames: string[]) =>
  frames.map(bodyOf).filter((id): id is string => id !== undefined);

/** Enables resumable stream management; returns the id. */
async function enable(client: RawClient): Promise<string> {
  client.send(`<enable xmlns="${SM}" resume="true"/>`);
  const enabled = await client.waitFrame((f) => f.startsWith("<enabled"), "<enabled/>");
  assert.match(enabled, /resume="true"/);
  assert.match(enabled, new RegExp(`max="${RESUMPTION_TIMEOUT_MS / 1000}"`));
  return /id="([^"]+)"/.exec(enabled)?.[1] as string;
}

/** Stanzas received after <enabled/>: the client's h. */
function handled(client: RawClient): number {
  const from = client.frames.findIndex((f) => f.startsWith("<enabled"));
  return client.frames.slice(from + 1).filter(isStanza).length;
}

describe("e2e: stream management (XEP-0198) across the mesh", function () {
  this.timeout(60000);
  let mesh: Mesh;
  let edgeA: EdgeProcess;
  let edgeB: EdgeProcess;
  let admin: Redis;
  let serial = 0;
  const clients: RawClient[] = [];
  const users: TestUser[] = [];

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({
      shardCount: 4,
      env: {
        MEGAPHONE_RESUMPTION_TIMEOUT_MS: String(RESUMPTION_TIMEOUT_MS),
        MEGAPHONE_EDGE_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS),
        MEGAPHONE_EDGE_HEARTBEAT_TTL_MS: String(HEARTBEAT_TTL_MS),
        MEGAPHONE_SHARD_LEASE_TTL_MS: String(SHARD_LEASE_TTL_MS),
        MEGAPHONE_MEMBERSHIP_HEARTBEAT_INTERVAL_MS: "250",
        MEGAPHONE_MEMBERSHIP_TTL_MS: "1000",
      },
    });
    await mesh.session("s01", "0-1");
    await mesh.session("s23", "2-3");
    edgeA = await mesh.edge("ea", "0-1");
    edgeB = await mesh.edge("eb", "2-3");
    admin = connect(mesh.redis.url);
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.terminate();
    await Promise.all(users.splice(0).map((u) => u.stop()));
  });

  after(async () => {
    admin?.disconnect();
    await mesh?.stop();
  });

  async function raw(edge: EdgeProcess): Promise<RawClient> {
    const client = await RawClient.connect(edge.url);
    clients.push(client);
    return client;
  }

  /** Fresh users alice (a @xmpp/client on edge B) and bob; bob's client is up to the test. */
  async function pair(): Promise<{ alice: TestUser; bob: string; bobBare: string }> {
    const tag = ++serial;
    const bob = `bob${tag}`;
    await mesh.addUser(`alice${tag}@localhost`, "pw");
    await mesh.addUser(`${bob}@localhost`, "pw");
    const alice = await TestUser.connect({
      service: edgeB.url,
      username: `alice${tag}`,
      password: "pw",
      mechanism: "PLAIN",
    });
    users.push(alice);
    return { alice, bob, bobBare: `${bob}@localhost` };
  }

  /** Bob on `edge`, bound as /phone, stream management enabled, available to alice (directed). */
  async function bobOn(edge: EdgeProcess, bob: string, alice: TestUser) {
    const client = await raw(edge);
    await client.login(bob, "pw", "phone");
    client.answerPings();
    const id = await enable(client);
    client.send(`<presence xmlns="jabber:client" to="${alice.jid}"/>`);
    await alice.waitFor(isPresenceFrom(`${bob}@localhost/phone`, undefined), "bob's presence");
    return { client, id };
  }

  /** alice sends m-1..m-`count` to bob/phone, one every SEND_INTERVAL_MS. */
  function sendMessages(alice: TestUser, to: string, count: number, sent: string[]) {
    return (async () => {
      for (let i = 0; i < count; i++) {
        const id = `m-${sent.length + 1}`;
        sent.push(id);
        await alice.send(xml("message", { to, type: "chat", id }, xml("body", {}, id)));
        await new Promise((resolve) => setTimeout(resolve, SEND_INTERVAL_MS));
      }
    })();
  }

  /** Resumes `previd` on a new socket through `edge`; returns it once <resumed/> arrived. */
  async function resume(edge: EdgeProcess, bob: string, previd: string, h: number) {
    const client = await raw(edge);
    await client.authenticate(bob, "pw");
    client.send(`<resume xmlns="${SM}" previd="${previd}" h="${h}"/>`);
    const resumed = await client.waitFrame((f) => f.startsWith("<resumed"), "<resumed/>");
    assert.match(resumed, new RegExp(`previd="${previd}"`));
    return { client, resumed };
  }

  /** Every message delivered exactly once over the two sockets; prints the counts. */
  function account(label: string, sent: string[], before: string[], after: string[]) {
    const outcomes = [...before, ...after];
    const unaccounted = sent.filter((id) => !outcomes.includes(id));
    const duplicates = outcomes.length - new Set(outcomes).size;
    console.log(
      `      ${label}: sent ${sent.length}: delivered before the drop ${before.length}, after the resume ${after.length}; unaccounted ${unaccounted.length}, duplicates ${duplicates}`,
    );
    assert.deepEqual(unaccounted, []);
    assert.equal(duplicates, 0, outcomes.join(" "));
    // Per sender, in order.
    assert.deepEqual(outcomes, [...sent]);
  }

  it("enables stream management, answers <r/> and forgets what the client acknowledges", async () => {
    const { alice, bob } = await pair();
    const { client, id } = await bobOn(edgeA, bob, alice);
    assert.match(id, /^[01]\.[A-Za-z0-9_-]+$/, "the id names bob's shard (edge A: 0-1)");
    const queue = KEYS.smQueue(Number(id.split(".")[0]), id);
    client.send(`<r xmlns="${SM}"/>`);
    await client.waitFrame((f) => f === `<a xmlns="${SM}" h="1"/>`, "h=1 (bob's presence)");

    const sent: string[] = [];
    await sendMessages(alice, `${bob}@localhost/phone`, 3, sent);
    await until(() => bodies(client.frames).length === 3, "bob got 3 messages");
    assert.equal(await admin.hlen(queue), 3, "three unacked stanzas kept");
    client.send(`<a xmlns="${SM}" h="3"/>`);
    await until(async () => (await admin.hlen(queue)) === 0, "acked stanzas forgotten");

    client.send(
      `<message xmlns="jabber:client" to="${alice.jid}" type="chat"><body>hi</body></message>`,
    );
    client.send(`<r xmlns="${SM}"/>`);
    await client.waitFrame((f) => f === `<a xmlns="${SM}" h="2"/>`, "h=2");
    client.send(`<enable xmlns="${SM}" resume="true"/>`);
    await client.waitFrame((f) => f.startsWith("<failed") && f.includes("unexpected-request"));
  });

  it("resumes through the other edge (and session) with messages in flight: none lost, none twice", async () => {
    const { alice, bob, bobBare } = await pair();
    const { client: first, id } = await bobOn(edgeA, bob, alice);
    const sent: string[] = [];
    const sending = sendMessages(alice, `${bobBare}/phone`, MESSAGES, sent);
    await first.waitFrame((f) => bodyOf(f) === "m-8", "m-8 on the first socket");
    first.terminate();
    await first.waitClosed();
    const h = handled(first);
    const before = bodies(first.frames);

    const { client: second, resumed } = await resume(edgeB, bob, id, h);
    assert.match(resumed, /h="1"/, "the server handled bob's one presence");
    await sending;
    await until(
      () => before.length + bodies(second.frames).length >= sent.length,
      "every message after the resume",
    ).catch((err) => {
      console.log(second.frames.join("\n"), before, sent);
      throw err;
    });
    // The resumed session sends too, as bob/phone, and is still available to alice.
    second.send(
      `<message xmlns="jabber:client" to="${alice.jid}" type="chat" id="back"><body>back</body></message>`,
    );
    const back = await alice.waitFor((el) => el.is("message") && el.attrs.id === "back");
    assert.equal(back.attrs.from, `${bobBare}/phone`);
    assert.ok(!alice.inbox.some(isPresenceFrom(`${bobBare}/phone`, "unavailable")));
    second.send(`<r xmlns="${SM}"/>`);
    await second.waitFrame((f) => f === `<a xmlns="${SM}" h="2"/>`, "h counts on after resume");
    account("resume", sent, before, bodies(second.frames));
  });

  it("kill -9 of an edge: the client resumes through the other edge; zero lost, zero duplicated", async () => {
    const { alice, bob, bobBare } = await pair();
    const edgeK = await mesh.edge(`ek${serial}`, "0-1");
    const address = (await admin.zrange(KEYS.edges(), "0", "-1")).find((a) =>
      a.startsWith(`ek${serial}:`),
    );
    assert.ok(address, "the edge registered");
    const { client: first, id } = await bobOn(edgeK, bob, alice);
    const sent: string[] = [];
    const sending = sendMessages(alice, `${bobBare}/phone`, MESSAGES, sent);
    await first.waitFrame((f) => bodyOf(f) === "m-8", "m-8 on the first socket");
    await edgeK.stop("SIGKILL");
    await first.waitClosed();
    const h = handled(first);
    const before = bodies(first.frames);

    const { client: second } = await resume(edgeB, bob, id, h);
    await sending;
    await until(
      () => before.length + bodies(second.frames).length >= sent.length,
      "every message after the resume",
    );
    // The dead edge's inbox is recovered meanwhile: what it held must not come a second time.
    await until(
      async () => !(await admin.zrange(KEYS.edges(), "0", "-1")).includes(address),
      "the dead edge's inbox recovered",
      HEARTBEAT_TTL_MS * 6,
    );
    second.send(`<r xmlns="${SM}"/>`);
    await second.waitFrame((f) => f.startsWith("<a "), "a round trip after the recovery");
    await alice.ping();
    assert.equal(await admin.exists(KEYS.offline(bobBare)), 0, "nothing went offline");
    assert.ok(!alice.inbox.some(isPresenceFrom(`${bobBare}/phone`, "unavailable")));
    account("edge kill -9", sent, before, bodies(second.frames));
  });

  it("a client that never resumes: unavailable after the timeout, unacked messages offline", async () => {
    const { alice, bob, bobBare } = await pair();
    const { client: first, id } = await bobOn(edgeA, bob, alice);
    const sent: string[] = [];
    await sendMessages(alice, `${bobBare}/phone`, 5, sent);
    await until(() => bodies(first.frames).length === 5, "5 live messages");
    const live = bodies(first.frames);
    first.send(`<a xmlns="${SM}" h="${handled(first)}"/>`);
    first.send(`<r xmlns="${SM}"/>`);
    await first.waitFrame((f) => f.startsWith("<a "), "the ack was applied");
    const droppedAt = Date.now();
    first.terminate();
    await first.waitClosed();
    await sendMessages(alice, `${bobBare}/phone`, 5, sent);
    const gone = await alice.waitFor(
      isPresenceFrom(`${bobBare}/phone`, "unavailable"),
      "bob's unavailable",
      RESUMPTION_TIMEOUT_MS + 5000,
    );
    const after = Date.now() - droppedAt;
    assert.ok(gone);
    assert.ok(after >= RESUMPTION_TIMEOUT_MS - 200, `unavailable ${after} ms after the drop`);

    const late = await raw(edgeB);
    await late.authenticate(bob, "pw");
    late.send(`<resume xmlns="${SM}" previd="${id}" h="0"/>`);
    await late.waitFrame(
      (f) => f.startsWith("<failed") && f.includes("item-not-found"),
      "failed: the session is gone",
    );
    const again = await raw(edgeB);
    await again.login(bob, "pw", "phone");
    again.send(`<presence xmlns="jabber:client"/>`);
    await until(() => bodies(again.frames).length >= 5, "offline messages");
    const offline = bodies(again.frames);
    const outcomes = [...live, ...offline];
    const unaccounted = sent.filter((m) => !outcomes.includes(m));
    const duplicates = outcomes.length - new Set(outcomes).size;
    console.log(
      `      no resume: sent ${sent.length}: delivered live ${live.length}, stored offline ${offline.length}; unaccounted ${unaccounted.length}, duplicates ${duplicates}; unavailable after ${after} ms`,
    );
    assert.deepEqual(unaccounted, []);
    assert.equal(duplicates, 0);
  });

  it("answers <failed/> for an unknown or malformed previd, and the stream may still bind", async () => {
    const { bob } = await pair();
    const client = await raw(edgeB);
    await client.authenticate(bob, "pw");
    client.send(`<resume xmlns="${SM}" previd="1.nosuchsession" h="0"/>`);
    await client.waitFrame(
      (f) => f.startsWith("<failed") && f.includes("item-not-found"),
      "failed for an unknown id",
    );
    client.send(`<resume xmlns="${SM}" previd="not an id" h="0"/>`);
    await client.waitFrame(
      (f) => f.startsWith("<failed") && f.includes("item-not-found") && !f.includes(" h="),
      "failed for a malformed id",
    );
    client.send(
      `<iq xmlns="jabber:client" type="set" id="b"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>r</resource></bind></iq>`,
    );
    await client.waitFrame((f) => f.includes(`id="b"`) && f.includes("<jid>"), "bound");
  });

  it("a new login binding the same resource replaces a hibernating session", async () => {
    const { alice, bob, bobBare } = await pair();
    const { client: first, id } = await bobOn(edgeA, bob, alice);
    const sent: string[] = [];
    first.terminate();
    await first.waitClosed();
    await sendMessages(alice, `${bobBare}/phone`, 3, sent);
    const again = await raw(edgeB);
    await again.login(bob, "pw", "phone");
    again.send(`<presence xmlns="jabber:client"/>`);
    // The old session's unacked messages are rerouted: to bob's new resource, or offline.
    await until(() => bodies(again.frames).length >= 3, "the hibernating session's messages");
    assert.deepEqual(bodies(again.frames), sent);
    const late = await raw(edgeA);
    await late.authenticate(bob, "pw");
    late.send(`<resume xmlns="${SM}" previd="${id}" h="0"/>`);
    await late.waitFrame((f) => f.startsWith("<failed"), "failed: replaced");
  });
  // Last: it kills and restarts the session of shards 0-1.
  it("a session process killed while sessions hibernate: one resumes on its successor, the other expires there", async () => {
    const { alice, bob, bobBare } = await pair();
    const carol = `carol${serial}`;
    await mesh.addUser(`${carol}@localhost`, "pw");
    const { client: bobFirst, id: bobId } = await bobOn(edgeA, bob, alice);
    const { client: carolFirst } = await bobOn(edgeA, carol, alice);
    const sent = { bob: [] as string[], carol: [] as string[] };
    await sendMessages(alice, `${bobBare}/phone`, 3, sent.bob);
    await sendMessages(alice, `${carol}@localhost/phone`, 3, sent.carol);
    await until(() => bodies(bobFirst.frames).length === 3, "bob's live messages");
    await until(() => bodies(carolFirst.frames).length === 3, "carol's live messages");
    carolFirst.send(`<a xmlns="${SM}" h="${handled(carolFirst)}"/>`);
    carolFirst.send(`<r xmlns="${SM}"/>`);
    await carolFirst.waitFrame((f) => f.startsWith("<a "), "carol's ack applied");
    const bobH = handled(bobFirst);
    bobFirst.terminate();
    carolFirst.terminate();
    await sendMessages(alice, `${bobBare}/phone`, 3, sent.bob);
    await sendMessages(alice, `${carol}@localhost/phone`, 3, sent.carol);
    // Both hibernate, and their snapshots (shards 0-1) say so, with the deadline, before the kill.
    await until(async () => {
      const snapshots = [
        ...Object.values(await admin.hgetall(KEYS.snapshot(0))),
        ...Object.values(await admin.hgetall(KEYS.snapshot(1))),
      ];
      return snapshots.filter((json) => json.includes('"hibernateUntilMs"')).length === 2;
    }, "both hibernations saved");
    const session = mesh.services.find((s) => s.name === "session s01");
    assert.ok(session);
    await session.stop("SIGKILL");
    await mesh.session("s01", "0-1");

    const { client: bobSecond } = await resume(edgeB, bob, bobId, bobH);
    await until(() => bodies(bobSecond.frames).length >= 3, "bob's messages after the resume");
    account(
      "resume after a session kill",
      sent.bob,
      bodies(bobFirst.frames),
      bodies(bobSecond.frames),
    );

    await alice.waitFor(
      isPresenceFrom(`${carol}@localhost/phone`, "unavailable"),
      "carol's unavailable, from the successor",
      RESUMPTION_TIMEOUT_MS + 8000,
    );
    assert.ok(!alice.inbox.some(isPresenceFrom(`${bobBare}/phone`, "unavailable")));
    const carolAgain = await raw(edgeB);
    await carolAgain.login(carol, "pw", "phone");
    carolAgain.send(`<presence xmlns="jabber:client"/>`);
    await until(() => bodies(carolAgain.frames).length >= 3, "carol's offline messages");
    const live = bodies(carolFirst.frames);
    const offline = bodies(carolAgain.frames);
    console.log(
      `      expiry after a session kill: sent ${sent.carol.length}: delivered live ${live.length}, stored offline ${offline.length}`,
    );
    assert.deepEqual([...live, ...offline], sent.carol);
  });
});
