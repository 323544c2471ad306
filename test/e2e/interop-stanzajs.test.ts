// Interop with a second, independent client library: StanzaJS 12 (npm `stanza`) over RFC 7395
// WebSocket, against the real mesh (Redis, one session, two edges), talking to @xmpp/client
// users. Each test ends by checking that no error stanza or stream error went either way: any
// such frame is something one side did not understand, i.e. an interop finding.
import assert from "node:assert/strict";
import { Mesh, type EdgeProcess } from "../helpers/cluster.js";
import { StanzaUser, first, once, type Mechanism } from "../helpers/stanza-user.js";
import { TestUser, isMessageFrom, isPresenceFrom, xml } from "../helpers/xmpp-client.js";

const NS_ROSTER = "jabber:iq:roster";
const NS_PING = "urn:xmpp:ping";
const NS_SID = "urn:xmpp:sid:0";
const PING_INTERVAL_MS = 2000;
const PING_TIMEOUT_MS = 1500;
/** StanzaJS escapes " and ' as &quot; &apos; in attributes; both ways must survive. */
const TRICKY = `O'Brien "X" & <co> — ünï 🚀`;

describe("interop: StanzaJS 12 clients through 2 edges and 1 session", function () {
  this.timeout(30000);
  let mesh: Mesh;
  let edge1: EdgeProcess;
  let edge2: EdgeProcess;
  const stanzaUsers: StanzaUser[] = [];
  const xmppUsers: TestUser[] = [];

  async function stanza(
    edge: EdgeProcess,
    username: string,
    options: {
      resource?: string;
      mechanism?: Mechanism;
      password?: string;
      streamManagement?: boolean;
    } = {},
  ): Promise<StanzaUser> {
    const user = await StanzaUser.connect({
      url: edge.url,
      jid: `${username}@localhost`,
      password: options.password ?? `${username}-pw`,
      resource: options.resource,
      mechanism: options.mechanism,
      streamManagement: options.streamManagement,
    });
    stanzaUsers.push(user);
    return user;
  }

  async function xmppjs(edge: EdgeProcess, username: string, resource?: string) {
    const user = await TestUser.connect({
      service: edge.url,
      username,
      password: `${username}-pw`,
      resource,
    });
    xmppUsers.push(user);
    return user;
  }

  /** No error stanza and no stream error either way (each would be an interop finding). */
  function assertClean(user: StanzaUser): void {
    const errors = user.errorFrames();
    assert.deepEqual(
      errors.map((f) => `${f.direction}: ${f.data}`),
      [],
      `error frames in ${user.jid}'s conversation:\n${user.trace()}`,
    );
  }

  /**
   * RFC 6121 §3: `s` (StanzaJS) and `x` (@xmpp/client) subscribe to each other, each seeing the
   * other's presence. Both must have requested the roster (interested resources, §2.1.6) and
   * sent initial presence already.
   */
  async function subscribeBothWays(s: StanzaUser, x: TestUser): Promise<void> {
    s.client.subscribe(x.bare);
    const request = await x.waitFor(isPresenceFrom(s.client.config.jid ?? "", "subscribe"));
    assert.equal(request.attrs.from, s.client.config.jid, "§3.1.2: from is the bare JID");
    await x.send(xml("presence", { to: request.attrs.from, type: "subscribed" }));
    await s.presence((p) => p.from === x.bare && p.type === "subscribed", "subscribed");
    await s.presence((p) => p.from === x.jid && !p.type, `${x.jid}'s presence`);

    await x.send(xml("presence", { to: s.client.config.jid, type: "subscribe" }));
    await s.presence((p) => p.from === x.bare && p.type === "subscribe", "x's request");
    s.client.acceptSubscription(x.bare);
    await x.waitFor(isPresenceFrom(s.client.config.jid ?? "", "subscribed"), "subscribed");
    await x.waitFor((el) => el.is("presence") && el.attrs.from === s.jid && !el.attrs.type);
  }

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({ shardCount: 8 });
    // Short server-to-client liveness check timings (XEP-0199 pings, XEP-0198 <r/>), so a test
    // sees StanzaJS answer them.
    await mesh.session("s1", "0-7", {
      MEGAPHONE_CLIENT_PING_INTERVAL_MS: String(PING_INTERVAL_MS),
      MEGAPHONE_CLIENT_PING_TIMEOUT_MS: String(PING_TIMEOUT_MS),
    });
    [edge1, edge2] = await Promise.all([mesh.edge("e1", "0-7"), mesh.edge("e2", "0-7")]);
    for (const name of [
      "stella",
      "sam",
      "xena",
      "sid",
      "xavier",
      "sue",
      "sage",
      "sena",
      "sol",
      "xander",
      "skye",
      "xiu",
    ])
      await mesh.addUser(`${name}@localhost`, `${name}-pw`);
  });

  afterEach(async () => {
    await Promise.all([
      ...stanzaUsers.splice(0).map((u) => u.stop()),
      ...xmppUsers.splice(0).map((u) => u.stop()),
    ]);
  });

  after(async () => mesh?.stop());

  it("logs in with the mechanism StanzaJS picks (SCRAM-SHA-256) and binds the resource", async () => {
    const stella = await stanza(edge1, "stella", { resource: "interop" });
    assert.deepEqual(
      [...stella.offeredMechanisms].sort(),
      ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"],
      "mechanisms offered over ws:// (no -PLUS without TLS)",
    );
    assert.equal(stella.negotiatedMechanism, "SCRAM-SHA-256");
    assert.equal(stella.startedWith, "stella@localhost/interop", "session:started carries it");
    assert.equal(stella.jid, "stella@localhost/interop");
    assertClean(stella);
  });

  for (const mechanism of ["SCRAM-SHA-1", "PLAIN"] as const)
    it(`logs in with ${mechanism} when StanzaJS is left only that one`, async () => {
      const stella = await stanza(edge2, "stella", { mechanism, resource: mechanism });
      assert.equal(stella.negotiatedMechanism, mechanism);
      assert.equal(stella.jid, `stella@localhost/${mechanism}`);
      assertClean(stella);
    });

  it("binds a server-generated resource when StanzaJS asks for none", async () => {
    const stella = await stanza(edge1, "stella");
    assert.match(stella.jid, /^stella@localhost\/.+/);
    assert.equal(stella.startedWith, stella.jid);
    assertClean(stella);
  });

  it("refuses a wrong password: StanzaJS gets <not-authorized/> and reports auth:failed", async () => {
    await assert.rejects(
      stanza(edge2, "stella", { password: "wrong" }),
      (err: Error & { event?: string }) => {
        assert.equal(err.event, "auth:failed", err.message);
        assert.match(
          err.message,
          /<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/><\/failure>\nC: <close [^\n]*\nS: <close /,
          "RFC 6120 §6.4.5 failure, then StanzaJS's <close/> answered (RFC 7395 §3.6)",
        );
        return true;
      },
    );
  });

  it("gets an empty roster, pushes a roster add, and subscribes both ways with an @xmpp/client user", async () => {
    const sam = await stanza(edge1, "sam", { resource: "laptop" });
    const xena = await xmppjs(edge2, "xena", "web");
    const empty = await sam.client.getRoster();
    assert.deepEqual(empty.items, []);
    await xena.xmpp.iqCaller.get(xml("query", { xmlns: NS_ROSTER }));
    sam.client.sendPresence();
    await xena.send(xml("presence"));

    // RFC 6121 §2.3: the set is answered and pushed to every interested resource.
    await sam.client.updateRosterItem({
      jid: "xena@localhost",
      name: TRICKY,
      subscription: "none",
      groups: ["Interop"],
    });
    const push = await sam.rosterPush((iq) =>
      (iq.roster.items ?? []).some((i) => i.jid === "xena@localhost"),
    );
    const pushed = push.roster.items?.[0];
    assert.equal(pushed?.name, TRICKY);
    assert.equal(pushed?.subscription, "none");
    assert.deepEqual(pushed?.groups, ["Interop"]);

    await subscribeBothWays(sam, xena);

    const roster = await sam.client.getRoster();
    const item = roster.items.find((i) => i.jid === "xena@localhost");
    assert.equal(item?.subscription, "both");
    assert.equal(item?.name, TRICKY);
    const pushes = sam.inbox.filter((r) => r.kind === "roster:update").length;
    assert.ok(pushes >= 3, `pushes for none → to (or ask) → both, got ${pushes}`);

    // Presence changes travel both ways, stamped with full JIDs.
    sam.client.sendPresence({ show: "away", status: "brb" });
    const away = await xena.waitFor(
      (el) => isPresenceFrom("sam@localhost")(el) && el.getChildText("show") === "away",
      "sam's away presence",
    );
    assert.equal(away.attrs.from, "sam@localhost/laptop");
    assert.equal(away.getChildText("status"), "brb");
    await xena.send(xml("presence", {}, xml("show", {}, "dnd")));
    const dnd = await sam.presence((p) => p.from === xena.jid && p.show === "dnd", "xena's dnd");
    assert.equal(dnd.to, "sam@localhost", "§4.4.2: broadcast to the contact's bare JID");
    assertClean(sam);
  });

  it("chats both ways with an @xmpp/client user, from stamped as the full JID", async () => {
    const sid = await stanza(edge1, "sid", { resource: "desk" });
    const xavier = await xmppjs(edge2, "xavier", "phone");
    sid.client.sendPresence();
    await xavier.send(xml("presence"));

    const id = sid.client.sendMessage({ to: "xavier@localhost", type: "chat", body: "hi xavier" });
    const m1 = await xavier.waitFor(isMessageFrom("sid@localhost", "hi xavier"), "sid's message");
    assert.equal(m1.attrs.from, "sid@localhost/desk");
    assert.equal(m1.attrs.id, id);
    assert.equal(
      m1.getChild("origin-id", NS_SID)?.attrs.id,
      id,
      "StanzaJS's XEP-0359 origin-id is routed untouched (RFC 6120 §8.4)",
    );

    sid.client.sendMessage({ to: "xavier@localhost/phone", type: "chat", body: TRICKY });
    const tricky = await xavier.waitFor(isMessageFrom("sid@localhost", TRICKY), "the tricky body");
    assert.equal(tricky.getChildText("body"), TRICKY);

    await xavier.send(
      xml("message", { to: m1.attrs.from, type: "chat", id: "x1" }, xml("body", {}, "hi sid")),
    );
    const m2 = await sid.message((m) => m.body === "hi sid", "xavier's reply");
    assert.equal(m2.from, "xavier@localhost/phone");
    assert.equal(m2.to, "sid@localhost/desk");
    assert.equal(m2.type, "chat");
    assert.equal(m2.id, "x1");

    // To sid's bare JID too.
    await xavier.send(
      xml("message", { to: "sid@localhost", type: "chat" }, xml("body", {}, "bare")),
    );
    const m3 = await sid.message((m) => m.body === "bare", "the message to the bare JID");
    assert.equal(m3.from, "xavier@localhost/phone");
    await xavier.send(
      xml("message", { to: "sid@localhost", type: "chat", id: TRICKY }, xml("body", {}, TRICKY)),
    );
    const m4 = await sid.message((m) => m.body === TRICKY, "the tricky body back");
    assert.equal(m4.id, TRICKY);
    assertClean(sid);
  });

  it("answers StanzaJS's ping and disco#info of the server", async () => {
    const sue = await stanza(edge2, "sue");
    await sue.client.ping(); // no 'to': the account answers (RFC 6120 §10.3)
    await sue.client.ping("localhost");
    const info = await sue.client.getDiscoInfo("localhost");
    assert.ok(info.features.includes(NS_PING), `features: ${info.features}`);
    assert.ok(
      info.identities.some((i) => i.category === "server"),
      `identities: ${JSON.stringify(info.identities)}`,
    );
    const items = await sue.client.getDiscoItems("localhost");
    assert.ok(Array.isArray(items.items));
    const version = await sue.client.getSoftwareVersion("localhost");
    assert.equal(version.name, "Megaphone");
    assertClean(sue);
  });

  it("answers the server's liveness checks in a form the server accepts: XEP-0199 pings, and <r/> with XEP-0198", async () => {
    // sena without XEP-0198 is pinged (XEP-0199), sage with it is asked for an ack (<r/>, not
    // a stanza, so nothing is counted), each once silent for PING_INTERVAL_MS; StanzaJS
    // answers at once. Had the server not taken an answer it would close the stream
    // PING_TIMEOUT_MS later; instead, after the next silence, it checks again.
    const [sena, sage] = await Promise.all([
      stanza(edge1, "sena", { resource: "idle", streamManagement: false }),
      stanza(edge2, "sage", { resource: "idle" }),
    ]);
    const wait = PING_INTERVAL_MS * 2 + 3000;
    const pinged = () => first(sena.client, ["iq:get:ping", "disconnected"], wait);
    const askedForAck = () => once(sage.client, "sm", wait, (sm) => sm.type === "request");
    await Promise.all([
      (async () => {
        assert.equal(await pinged(), "iq:get:ping");
        assert.equal(await pinged(), "iq:get:ping");
      })(),
      (async () => {
        await askedForAck();
        await askedForAck();
      })(),
    ]);
    const pings = sena.inbox.flatMap((r) => (r.kind === "iq" && r.stanza.ping ? [r.stanza] : []));
    assert.equal(pings.length, 2);
    assert.equal(pings[0].from, "localhost");
    assert.equal(pings[0].to, "sena@localhost/idle");
    const answer = sena.frames.find((f) => f.direction === "out" && f.data.includes(pings[0].id));
    assert.match(answer?.data ?? "", /^<iq\b[^>]*type="result"/, sena.trace());
    assertClean(sena);
    // sage got no ping, and answered each <r/> with an <a/> whose h the server accepted (one
    // past what it sent would have been a stream error, which assertClean sees).
    assert.equal(
      sage.inbox.filter((r) => r.kind === "iq" && r.stanza.ping).length,
      0,
      sage.trace(),
    );
    const acks = sage.frames.filter((f) => f.direction === "out" && /^<a\b/.test(f.data));
    assert.ok(acks.length >= 2, sage.trace());
    assertClean(sage);
  });

  it("delivers a stored message to a StanzaJS user with a delay after its initial presence", async () => {
    const xander = await xmppjs(edge1, "xander", "desk");
    await xander.send(
      xml("message", { to: "sol@localhost", type: "chat" }, xml("body", {}, "while you were out")),
    );
    await xander.ping(); // processed and stored before sol logs in
    const sol = await stanza(edge2, "sol", { resource: "tablet" });
    await sol.client.ping(); // a round trip: nothing is delivered before initial presence
    assert.equal(sol.inbox.filter((r) => r.kind === "message").length, 0);
    sol.client.sendPresence();
    const stored = await sol.message((m) => m.body === "while you were out", "the offline message");
    assert.equal(stored.from, "xander@localhost/desk");
    assert.ok(stored.delay, "XEP-0203 delay");
    assert.equal(stored.delay.from, "localhost");
    assert.ok(stored.delay.timestamp instanceof Date);
    assert.ok(!Number.isNaN(stored.delay.timestamp.getTime()), "a valid stamp");
    assert.ok(stored.delay.timestamp.getTime() <= Date.now());
    assertClean(sol);
  });

  it("closes cleanly: StanzaJS's <close/> is answered, and its contact sees unavailable", async () => {
    const skye = await stanza(edge1, "skye", { resource: "pc" });
    const xiu = await xmppjs(edge2, "xiu", "web");
    // Interested resources (RFC 6121 §2.1.6) get subscription approvals (§3.1.6) and pushes.
    await skye.client.getRoster();
    await xiu.xmpp.iqCaller.get(xml("query", { xmlns: NS_ROSTER }));
    skye.client.sendPresence();
    await xiu.send(xml("presence"));
    await subscribeBothWays(skye, xiu);

    await skye.stop();
    const gone = await xiu.waitFor(isPresenceFrom("skye@localhost", "unavailable"), "unavailable");
    assert.equal(gone.attrs.from, "skye@localhost/pc");
    // RFC 7395 §3.6: the client's <close/> is answered with a <close/>.
    const closes = skye.frames.filter((f) => /^<close\b/.test(f.data));
    assert.deepEqual(
      closes.map((f) => f.direction),
      ["out", "in"],
      skye.trace(),
    );
    assertClean(skye);
  });
});
