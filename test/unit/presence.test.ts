// RFC 6121 §3 (subscriptions) and §4 (presence), through the session core with memory stores.
import { strict as assert } from "node:assert";
import { newConnState, type ConnState } from "../../services/session/core/connection.js";
import { HandlerChain } from "../../services/session/core/handler-chain.js";
import { registerPresence } from "../../services/session/features/presence/presence.js";
import { readPriority } from "../../services/session/features/presence/broadcast.js";
import { inbound, outbound } from "../../services/session/features/presence/subscription-state.js";
import { registerRoster } from "../../services/session/features/roster/roster.js";
import type { RosterItem } from "../../services/shared/stores/roster/roster-store.js";
import { parse, type Element } from "ltx";
import { handleFrame } from "../../services/session/core/dispatch.js";
import { TestSessionContext, assertXml, assertXmlList, input } from "../helpers/session-context.js";
import { captureLogs, interfereAfterReads, seedItem } from "../helpers/roster-fixtures.js";

const ALICE = "alice@example.com";
const BOB = "bob@example.com";
const CAROL = "carol@example.com";
const DAVE = "dave@example.com";
const ERIN = "erin@example.com";
const NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind";

const push = (to: string, ver: string, item: string) =>
  `<iq type="set" id="*" to="${to}"><query xmlns="jabber:iq:roster" ver="${ver}">${item}</query></iq>`;

/** The defined condition of an error stanza, or undefined. */
function conditionOf(stanza: Element | undefined): string | undefined {
  const error = stanza?.attrs.type === "error" ? stanza.getChild("error") : undefined;
  return error
    ?.getChildElements()
    .find((c) => c.attrs.xmlns === "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name !== "text")
    ?.name;
}

describe("presence (RFC 6121 §4)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let hookCalls: string[];

  beforeEach(() => {
    ctx = new TestSessionContext();
    chain = new HandlerChain();
    registerRoster(chain);
    registerPresence(chain);
    hookCalls = [];
    chain.onInitialPresence.push(async (hookCtx, conn) => {
      hookCalls.push(conn.connId);
      hookCtx.send(
        conn,
        `<message xmlns="jabber:client" from="${ctx.domain}"><body>hook</body></message>`,
      );
    });
  });

  async function item(
    owner: string,
    jid: string,
    subscription: RosterItem["subscription"],
  ): Promise<void> {
    await seedItem(ctx, owner, { jid, subscription, groups: [] });
  }

  /** The connection's remembered directed-presence recipients, sorted. */
  async function directedOf(conn: ConnState): Promise<string[]> {
    return (await ctx.stores.directed.list(conn.shard, conn.connId)).sort();
  }

  async function online(jid: string, presence = "<presence/>"): Promise<ConnState> {
    const conn = await ctx.connect(jid);
    await input(ctx, chain, conn, presence);
    return conn;
  }

  describe("initial presence (§4.2)", () => {
    it("stores it, broadcasts it, answers the probes, then runs the hooks", async () => {
      await item(ALICE, BOB, "both");
      await item(BOB, ALICE, "both");
      await item(ALICE, CAROL, "to"); // alice sees carol; carol does not see alice
      await item(CAROL, ALICE, "from");
      await item(ALICE, DAVE, "from"); // dave sees alice; alice does not see dave
      await item(DAVE, ALICE, "to");
      const pc = await online(`${BOB}/pc`, `<presence><show>away</show></presence>`);
      const carolPhone = await online(`${CAROL}/phone`);
      const davePhone = await online(`${DAVE}/phone`);
      const bobIdle = await ctx.connect(`${BOB}/idle`); // bound, never available
      const laptop = await online(`${ALICE}/laptop`);
      const phone = await ctx.connect(`${ALICE}/phone`);
      ctx.clearOutput();
      hookCalls = [];

      await input(
        ctx,
        chain,
        phone,
        `<presence><priority>300</priority><status>hi</status></presence>`,
      );

      const sent = `<priority>300</priority><status>hi</status>`;
      assertXmlList(ctx.received(pc), [
        `<presence from="${ALICE}/phone" to="${BOB}">${sent}</presence>`,
      ]);
      assertXmlList(ctx.received(davePhone), [
        `<presence from="${ALICE}/phone" to="${DAVE}">${sent}</presence>`,
      ]);
      assertXmlList(ctx.received(carolPhone), []);
      assertXmlList(ctx.received(bobIdle), []);
      assertXmlList(ctx.received(laptop), [
        `<presence from="${ALICE}/phone" to="${ALICE}/laptop">${sent}</presence>`,
      ]);
      assertXmlList(ctx.received(phone), [
        // §4.2.2: also to the sending resource itself.
        `<presence from="${ALICE}/phone" to="${ALICE}/phone">${sent}</presence>`,
        // Probe answers: own other resource, then bob and carol (subscription to/both), not dave.
        `<presence from="${ALICE}/laptop" to="${ALICE}/phone"/>`,
        `<presence from="${BOB}/pc" to="${ALICE}/phone"><show>away</show></presence>`,
        `<presence from="${CAROL}/phone" to="${ALICE}/phone"/>`,
        `<message from="example.com"><body>hook</body></message>`,
      ]);
      assert.deepEqual(hookCalls, [phone.connId]);
      assert.equal(phone.available, true);
      assert.equal(phone.priority, 127);
      const route = (await ctx.stores.routes.list(ALICE)).find((r) => r.resource === "phone");
      assert.equal(route?.priority, 127);
      assert.equal(route?.available, true);
      const stored = (await ctx.stores.routes.presences(ALICE)).find((r) => r.resource === "phone");
      assertXml(stored?.presence as string, `<presence from="${ALICE}/phone">${sent}</presence>`);
    });

    it("refuses a presence over maxPresenceBytes with policy-violation and broadcasts nothing", async () => {
      await item(ALICE, BOB, "both");
      await item(BOB, ALICE, "both");
      const pc = await online(`${BOB}/pc`);
      const phone = await ctx.connect(`${ALICE}/phone`);
      ctx.clearOutput();
      const status = "x".repeat(ctx.config.maxPresenceBytes);
      await input(ctx, chain, phone, `<presence id="big"><status>${status}</status></presence>`);
      assert.equal(ctx.received(pc).length, 0);
      const [reply] = ctx.received(phone);
      assert.equal(reply.attrs.type, "error");
      assert.ok(reply.getChild("error")?.getChild("policy-violation"), reply.toString());
      assert.equal(phone.available, false);
    });

    it("clamps and defaults the priority (§4.7.2.3)", () => {
      const priority = (xml: string) => readPriority(parse(xml));
      assert.equal(priority(`<presence/>`), 0);
      assert.equal(priority(`<presence><priority>-5</priority></presence>`), -5);
      assert.equal(priority(`<presence><priority>-129</priority></presence>`), -128);
      assert.equal(priority(`<presence><priority>1.5</priority></presence>`), 0);
      assert.equal(priority(`<presence><priority>high</priority></presence>`), 0);
    });

    it("broadcasts later presence without probes or hooks (§4.4)", async () => {
      await item(ALICE, BOB, "both");
      await item(BOB, ALICE, "both");
      const pc = await online(`${BOB}/pc`);
      const phone = await online(`${ALICE}/phone`);
      ctx.clearOutput();
      hookCalls = [];
      await input(ctx, chain, phone, `<presence><show>dnd</show></presence>`);
      assertXmlList(ctx.received(pc), [
        `<presence from="${ALICE}/phone" to="${BOB}"><show>dnd</show></presence>`,
      ]);
      assertXmlList(ctx.received(phone), [
        `<presence from="${ALICE}/phone" to="${ALICE}/phone"><show>dnd</show></presence>`,
      ]);
      assert.deepEqual(hookCalls, []);
    });

    it("delivers pending subscription requests before the hooks, at every login until answered", async () => {
      await ctx.createAccount(BOB);
      const phone = await online(`${ALICE}/phone`);
      await input(
        ctx,
        chain,
        phone,
        `<presence type="subscribe" to="${BOB}" id="s1"><nick xmlns="http://jabber.org/protocol/nick">Al</nick></presence>`,
      );
      const request = `<presence type="subscribe" to="${BOB}" id="s1" from="${ALICE}"><nick xmlns="http://jabber.org/protocol/nick">Al</nick></presence>`;

      const pc = await ctx.connect(`${BOB}/pc`);
      await input(ctx, chain, pc, `<presence/>`);
      assertXmlList(ctx.received(pc), [
        `<presence from="${BOB}/pc" to="${BOB}/pc"/>`,
        request,
        `<message from="example.com"><body>hook</body></message>`,
      ]);
      await ctx.disconnect(chain, pc);

      const pc2 = await online(`${BOB}/pc2`);
      assertXmlList(ctx.received(pc2), [
        `<presence from="${BOB}/pc2" to="${BOB}/pc2"/>`,
        request,
        `<message from="example.com"><body>hook</body></message>`,
      ]);
      await input(ctx, chain, pc2, `<presence type="unsubscribed" to="${ALICE}"/>`);
      await ctx.disconnect(chain, pc2);

      const pc3 = await online(`${BOB}/pc3`);
      assertXmlList(ctx.received(pc3), [
        `<presence from="${BOB}/pc3" to="${BOB}/pc3"/>`,
        `<message from="example.com"><body>hook</body></message>`,
      ]);
    });
  });

  describe("unavailable presence (§4.5)", () => {
    let phone: ConnState;
    let pc: ConnState;
    let erin: ConnState;

    beforeEach(async () => {
      await item(ALICE, BOB, "both");
      await item(BOB, ALICE, "both");
      pc = await online(`${BOB}/pc`);
      erin = await online(`${ERIN}/home`);
      phone = await online(`${ALICE}/phone`);
      await input(ctx, chain, phone, `<presence to="${ERIN}"><show>chat</show></presence>`);
      ctx.clearOutput();
    });

    it("is broadcast, clears the stored presence and reaches directed-presence recipients", async () => {
      await input(
        ctx,
        chain,
        phone,
        `<presence type="unavailable"><status>bye</status></presence>`,
      );
      const gone = (to: string) =>
        `<presence type="unavailable" from="${ALICE}/phone" to="${to}"><status>bye</status></presence>`;
      assertXmlList(ctx.received(pc), [gone(BOB)]);
      assertXmlList(ctx.received(erin), [gone(ERIN)]);
      assertXmlList(ctx.received(phone), [gone(`${ALICE}/phone`)]);
      assert.equal(phone.available, false);
      assert.deepEqual(await directedOf(phone), [].sort());
      const route = (await ctx.stores.routes.list(ALICE)).find((r) => r.resource === "phone");
      assert.equal(route?.available, false);
      assert.deepEqual(await ctx.stores.routes.presences(ALICE), []);

      // Available again: that is a new initial presence (probes and hooks again).
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence/>`);
      assertXmlList(ctx.received(phone), [
        `<presence from="${ALICE}/phone" to="${ALICE}/phone"/>`,
        `<presence from="${BOB}/pc" to="${ALICE}/phone"/>`,
        `<message from="example.com"><body>hook</body></message>`,
      ]);
    });

    it("is sent on the client's behalf when the connection ends", async () => {
      const laptop = await online(`${ALICE}/laptop`);
      ctx.clearOutput();
      await ctx.disconnect(chain, phone);
      const gone = (to: string) =>
        `<presence type="unavailable" from="${ALICE}/phone" to="${to}"/>`;
      assertXmlList(ctx.received(pc), [gone(BOB)]);
      assertXmlList(ctx.received(erin), [gone(ERIN)]);
      assertXmlList(ctx.received(laptop), [gone(`${ALICE}/laptop`)]);
      assertXmlList(ctx.received(phone), []);
      assert.deepEqual(
        (await ctx.stores.routes.list(ALICE)).map((r) => r.resource),
        ["laptop"],
      );
    });

    it("is not sent for a connection that never was available", async () => {
      const idle = await ctx.connect(`${ALICE}/idle`);
      await ctx.disconnect(chain, idle);
      assert.deepEqual(ctx.written, []);
    });

    /** A second connection of alice binding `resource` through the real bind (§7.7.2.2). */
    async function takeOver(resource: string): Promise<ConnState> {
      const conn = newConnState(`edge-test.0.t${resource}`, "edge-test", 0, ctx.nowMs);
      conn.stage = "restarted";
      conn.streamId = `stream-t${resource}`;
      conn.bareJid = ALICE;
      await input(
        ctx,
        chain,
        conn,
        `<iq type="set" id="bind"><bind xmlns="${NS_BIND}"><resource>${resource}</resource></bind></iq>`,
      );
      return conn;
    }
    const goneFrom = (from: string, to: string) =>
      `<presence type="unavailable" from="${from}" to="${to}"/>`;

    it("is broadcast by the new holder at a takeover, before its bind is answered", async () => {
      const laptop = await online(`${ALICE}/laptop`);
      ctx.clearOutput();
      const newPhone = await takeOver("phone");
      assert.deepEqual(ctx.kicked, [{ connId: phone.connId, condition: "conflict" }]);
      assertXmlList(ctx.received(pc), [goneFrom(`${ALICE}/phone`, BOB)]);
      assertXmlList(ctx.received(laptop), [goneFrom(`${ALICE}/phone`, `${ALICE}/laptop`)]);
      const order = ctx.written.map((w) => w.connId);
      assert.ok(order.indexOf(pc.connId) < order.indexOf(newPhone.connId), order.join());
      assert.equal(ctx.received(newPhone).length, 1, "only the bind result");
    });

    it("is broadcast again, with the kick, when the takeover's bind is delivered again", async () => {
      const newPhone = await takeOver("phone");
      // The batch failed after the bind was stored: rolled back and delivered again.
      newPhone.stage = "restarted";
      delete newPhone.resource;
      ctx.clearOutput();
      await input(
        ctx,
        chain,
        newPhone,
        `<iq type="set" id="bind"><bind xmlns="${NS_BIND}"><resource>phone</resource></bind></iq>`,
      );
      assertXmlList(ctx.received(pc), [goneFrom(`${ALICE}/phone`, BOB)]);
      assert.deepEqual(
        ctx.kicked.map((k) => k.connId),
        [phone.connId, phone.connId],
      );
    });

    it("is never sent to contacts by a connection whose resource was taken over", async () => {
      const newPhone = await takeOver("phone");
      ctx.clearOutput();
      // The old connection goes on until its conflict arrives: nothing it says reaches contacts.
      await input(ctx, chain, phone, `<presence><show>away</show></presence>`);
      await input(ctx, chain, newPhone, `<presence/>`);
      await ctx.disconnect(chain, phone);
      assertXmlList(ctx.received(pc), [`<presence from="${ALICE}/phone" to="${BOB}"/>`]);
      // Its directed-presence recipients are its own: they still hear it left.
      assertXmlList(ctx.received(erin), [goneFrom(`${ALICE}/phone`, ERIN)]);
      assert.deepEqual(
        (await ctx.stores.routes.list(ALICE)).map((r) => r.connId),
        [newPhone.connId],
      );
    });

    it("is sent once, by the old connection, when it became unavailable before the takeover", async () => {
      await input(ctx, chain, phone, `<presence type="unavailable"/>`);
      assertXmlList(ctx.received(pc), [goneFrom(`${ALICE}/phone`, BOB)]);
      ctx.clearOutput();
      await takeOver("phone");
      await ctx.disconnect(chain, phone);
      assertXmlList(ctx.received(pc), []);
    });

    it("is sent by the old connection when its binding is gone and nobody took it", async () => {
      await ctx.stores.routes.unbind(ALICE, "phone", phone.connId);
      await ctx.disconnect(chain, phone);
      assertXmlList(ctx.received(pc), [goneFrom(`${ALICE}/phone`, BOB)]);
    });
  });

  describe("directed presence (§4.6)", () => {
    it("remembers at most directedPresenceMaxRecipients non-subscribers per connection", async () => {
      ctx.config.directedPresenceMaxRecipients = 2;
      await ctx.createAccount(ERIN);
      await ctx.createAccount(DAVE);
      await ctx.createAccount(CAROL);
      const phone = await online(`${ALICE}/phone`);
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence to="${ERIN}"/>`);
      await input(ctx, chain, phone, `<presence to="${DAVE}"/>`);
      await input(ctx, chain, phone, `<presence to="${CAROL}" id="p3"/>`);
      await input(ctx, chain, phone, `<presence to="${ERIN}" id="p4"/>`);
      const replies = ctx.received(phone);
      assert.equal(replies.length, 1, replies.join("\n"));
      assert.equal(replies[0].attrs.id, "p3");
      assert.equal(conditionOf(replies[0]), "resource-constraint");
      assert.deepEqual(await directedOf(phone), [ERIN, DAVE].sort());
    });

    it("remembers at most directedPresenceMaxBytes of recipient JIDs per connection", async () => {
      ctx.config.directedPresenceMaxBytes = 2 * ERIN.length + 5;
      const phone = await online(`${ALICE}/phone`);
      await ctx.createAccount(ERIN);
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence to="${ERIN}/a"/>`);
      await input(ctx, chain, phone, `<presence to="${ERIN}/b"/>`);
      await input(ctx, chain, phone, `<presence to="${ERIN}/long" id="p3"/>`);
      const replies = ctx.received(phone);
      assert.equal(replies.length, 1, replies.join("\n"));
      assert.equal(conditionOf(replies[0]), "resource-constraint");
      assert.deepEqual(await directedOf(phone), [`${ERIN}/a`, `${ERIN}/b`]);
    });

    it("keeps the list out of the connection state its snapshots are made of", async () => {
      await ctx.createAccount(ERIN);
      await ctx.createAccount(BOB);
      const phone = await online(`${ALICE}/phone`);
      const before = JSON.stringify(phone);
      for (let i = 0; i < 20; i++) await input(ctx, chain, phone, `<presence to="${ERIN}/r${i}"/>`);
      assert.equal((await directedOf(phone)).length, 20);
      // A message-only batch serialises the state: the recipients are not in it.
      await input(ctx, chain, phone, `<message to="${BOB}" type="chat"><body>hi</body></message>`);
      const snapshot = JSON.stringify(phone);
      assert.ok(!snapshot.includes(ERIN), snapshot);
      assert.ok(snapshot.length <= before.length + 40, `${before}\n${snapshot}`);
    });

    it("remembers a recipient again when it gets presence after an unavailable in one batch", async () => {
      await ctx.createAccount(ERIN);
      const phone = await online(`${ALICE}/phone`);
      await input(ctx, chain, phone, `<presence to="${ERIN}"/>`);
      // One batch: the unavailable broadcast forgets the list once its deliveries are stored.
      const el = (xml: string) => {
        const parsed = parse(xml);
        parsed.attrs.xmlns = "jabber:client";
        return parsed.toString();
      };
      await handleFrame(ctx, chain, phone, el(`<presence type="unavailable"/>`));
      await handleFrame(ctx, chain, phone, el(`<presence/>`));
      await handleFrame(ctx, chain, phone, el(`<presence to="${ERIN}"/>`));
      await ctx.runAfterEffects();
      assert.deepEqual(await directedOf(phone), [ERIN]);
    });

    it("goes to the addressed JID only and is remembered for non-subscribers", async () => {
      await item(ALICE, BOB, "from");
      await item(BOB, ALICE, "to");
      const home = await online(`${ERIN}/home`);
      const work = await online(`${ERIN}/work`);
      const pc = await online(`${BOB}/pc`);
      const phone = await online(`${ALICE}/phone`);
      ctx.clearOutput();

      await input(ctx, chain, phone, `<presence to="${ERIN}/work"><show>xa</show></presence>`);
      await input(ctx, chain, phone, `<presence to="${ERIN}"/>`);
      await input(ctx, chain, phone, `<presence to="${BOB}/pc"/>`);
      assertXmlList(ctx.received(work), [
        `<presence to="${ERIN}/work" from="${ALICE}/phone"><show>xa</show></presence>`,
        `<presence to="${ERIN}" from="${ALICE}/phone"/>`,
      ]);
      assertXmlList(ctx.received(home), [`<presence to="${ERIN}" from="${ALICE}/phone"/>`]);
      assertXmlList(ctx.received(pc), [`<presence to="${BOB}/pc" from="${ALICE}/phone"/>`]);
      // bob is subscribed, so broadcasts reach him anyway.
      assert.deepEqual(await directedOf(phone), [`${ERIN}/work`, ERIN].sort());

      await input(ctx, chain, phone, `<presence type="unavailable" to="${ERIN}/work"/>`);
      assert.deepEqual(await directedOf(phone), [ERIN].sort());
      const last = ctx.received(work).at(-1);
      assert.ok(last);
      assertXml(last, `<presence type="unavailable" to="${ERIN}/work" from="${ALICE}/phone"/>`);
    });

    it("is silently dropped for an unknown user or an offline resource", async () => {
      const phone = await online(`${ALICE}/phone`);
      await ctx.createAccount(BOB);
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence to="nobody@example.com"/>`);
      await input(ctx, chain, phone, `<presence to="${BOB}/gone"/>`);
      await input(ctx, chain, phone, `<presence to="example.com"/>`);
      assert.deepEqual(ctx.written, []);
      assert.deepEqual(await directedOf(phone), [`${BOB}/gone`].sort());
    });

    it("answers remote-server-not-found for another domain and jid-malformed for a bad JID", async () => {
      const phone = await online(`${ALICE}/phone`);
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence to="someone@elsewhere.org" id="p1"/>`);
      await input(ctx, chain, phone, `<presence to="a@b@c" id="p2"/>`);
      await input(
        ctx,
        chain,
        phone,
        `<presence type="subscribe" to="someone@elsewhere.org" id="p3"/>`,
      );
      await input(ctx, chain, phone, `<presence type="bogus" id="p4"/>`);
      const error = (id: string, from: string, condition: string, type: string) =>
        `<presence type="error" id="${id}" to="${ALICE}/phone" from="${from}"><error type="${type}"><${condition} xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`;
      const [p1, p2, p3, p4] = ctx.received(phone);
      assertXml(
        p1,
        error("p1", "someone@elsewhere.org", "remote-server-not-found", "cancel").replace(
          "</error>",
          `<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">no server-to-server here</text></error>`,
        ),
      );
      assert.equal(p2.attrs.type, "error");
      assert.ok(
        p2.getChild("error")?.getChild("jid-malformed", "urn:ietf:params:xml:ns:xmpp-stanzas"),
      );
      assert.ok(
        p3
          .getChild("error")
          ?.getChild("remote-server-not-found", "urn:ietf:params:xml:ns:xmpp-stanzas"),
      );
      assert.ok(
        p4.getChild("error")?.getChild("bad-request", "urn:ietf:params:xml:ns:xmpp-stanzas"),
      );
      assert.equal(ctx.received(phone).length, 4);
      assert.deepEqual(await ctx.stores.rosters.get(ALICE), { version: "0", items: [] });
    });

    it("routes presence errors to a connected full JID only", async () => {
      const phone = await online(`${ALICE}/phone`);
      const pc = await online(`${BOB}/pc`);
      ctx.clearOutput();
      await input(
        ctx,
        chain,
        phone,
        `<presence type="error" to="${BOB}/pc"><error type="cancel"><gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`,
      );
      await input(ctx, chain, phone, `<presence type="error" to="${BOB}"/>`);
      assertXmlList(ctx.received(pc), [
        `<presence type="error" to="${BOB}/pc" from="${ALICE}/phone"><error type="cancel"><gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`,
      ]);
      assertXmlList(ctx.received(phone), []);
    });
  });

  describe("probes from a client (§4.3)", () => {
    it("are answered for a contact the user is subscribed to, and ignored otherwise", async () => {
      await item(ALICE, BOB, "to");
      await item(BOB, ALICE, "from");
      const pc = await online(`${BOB}/pc`, `<presence><show>away</show></presence>`);
      await online(`${CAROL}/phone`);
      const phone = await online(`${ALICE}/phone`);
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence type="probe" to="${BOB}"/>`);
      await input(ctx, chain, phone, `<presence type="probe" to="${CAROL}"/>`);
      assertXmlList(ctx.received(phone), [
        `<presence from="${BOB}/pc" to="${ALICE}/phone"><show>away</show></presence>`,
      ]);
      await input(ctx, chain, pc, `<presence type="unavailable"/>`);
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence type="probe" to="${BOB}"/>`);
      assertXmlList(ctx.received(phone), [
        `<presence type="unavailable" from="${BOB}" to="${ALICE}/phone"/>`,
      ]);
    });
  });
});

describe("subscriptions (RFC 6121 §3)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let phone: ConnState; // alice, interested and available
  let pc: ConnState; // bob, interested and available

  const itemOf = (owner: string, jid: string) => ctx.stores.rosters.getItem(owner, jid);
  const pending = async (owner: string) => [
    ...(await ctx.stores.rosters.listPendingIn(owner)).keys(),
  ];

  beforeEach(async () => {
    ctx = new TestSessionContext();
    chain = new HandlerChain();
    registerRoster(chain);
    registerPresence(chain);
    phone = await ctx.connect(`${ALICE}/phone`);
    pc = await ctx.connect(`${BOB}/pc`);
    for (const conn of [phone, pc]) {
      await input(
        ctx,
        chain,
        conn,
        `<iq type="get" id="roster"><query xmlns="jabber:iq:roster"/></iq>`,
      );
      await input(ctx, chain, conn, `<presence/>`);
    }
    ctx.clearOutput();
  });

  it("runs the whole handshake: request, approval, mutual, unsubscribe, cancel", async () => {
    // 1. alice asks (§3.1.2, §3.1.3): pending out for alice, pending in for bob.
    await input(ctx, chain, phone, `<presence type="subscribe" to="${BOB}/pc" id="sub1"/>`);
    assertXmlList(ctx.received(phone), [
      push(`${ALICE}/phone`, "1", `<item jid="${BOB}" subscription="none" ask="subscribe"/>`),
    ]);
    assertXmlList(ctx.received(pc), [
      `<presence type="subscribe" to="${BOB}" id="sub1" from="${ALICE}"/>`,
    ]);
    assert.deepEqual(await pending(BOB), [ALICE]);
    assert.equal(await itemOf(BOB, ALICE), undefined, "a request alone creates no roster item");
    ctx.clearOutput();

    // 2. bob approves (§3.1.5, §3.1.6): from for bob, to for alice, and alice gets bob's presence.
    await input(ctx, chain, pc, `<presence type="subscribed" to="${ALICE}" id="ok1"/>`);
    assertXmlList(ctx.received(pc), [
      push(`${BOB}/pc`, "1", `<item jid="${ALICE}" subscription="from"/>`),
    ]);
    assertXmlList(ctx.received(phone), [
      `<presence type="subscribed" to="${ALICE}" id="ok1" from="${BOB}"/>`,
      push(`${ALICE}/phone`, "2", `<item jid="${BOB}" subscription="to"/>`),
      `<presence from="${BOB}/pc" to="${ALICE}"/>`,
    ]);
    assert.deepEqual(await pending(BOB), []);
    ctx.clearOutput();

    // Now bob's presence reaches alice, and alice's does not reach bob.
    await input(ctx, chain, pc, `<presence><show>away</show></presence>`);
    await input(ctx, chain, phone, `<presence><show>chat</show></presence>`);
    assertXmlList(ctx.received(phone), [
      `<presence from="${BOB}/pc" to="${ALICE}"><show>away</show></presence>`,
      `<presence from="${ALICE}/phone" to="${ALICE}/phone"><show>chat</show></presence>`,
    ]);
    assertXmlList(ctx.received(pc), [
      `<presence from="${BOB}/pc" to="${BOB}/pc"><show>away</show></presence>`,
    ]);
    ctx.clearOutput();

    // 3. bob asks back, alice approves: both.
    await input(ctx, chain, pc, `<presence type="subscribe" to="${ALICE}"/>`);
    assertXmlList(ctx.received(pc), [
      push(`${BOB}/pc`, "2", `<item jid="${ALICE}" subscription="from" ask="subscribe"/>`),
    ]);
    assertXmlList(ctx.received(phone), [
      `<presence type="subscribe" to="${ALICE}" from="${BOB}"/>`,
    ]);
    ctx.clearOutput();
    await input(ctx, chain, phone, `<presence type="subscribed" to="${BOB}"/>`);
    assertXmlList(ctx.received(phone), [
      push(`${ALICE}/phone`, "3", `<item jid="${BOB}" subscription="both"/>`),
    ]);
    assertXmlList(ctx.received(pc), [
      `<presence type="subscribed" to="${BOB}" from="${ALICE}"/>`,
      push(`${BOB}/pc`, "3", `<item jid="${ALICE}" subscription="both"/>`),
      `<presence from="${ALICE}/phone" to="${BOB}"><show>chat</show></presence>`,
    ]);
    ctx.clearOutput();

    // A repeated request while subscribed is answered by the server, and changes nothing.
    await input(ctx, chain, phone, `<presence type="subscribe" to="${BOB}"/>`);
    assert.deepEqual(ctx.written, []);

    // 4. alice unsubscribes (§3.3): alice keeps from, bob keeps to; alice hears bob is gone.
    await input(ctx, chain, phone, `<presence type="unsubscribe" to="${BOB}"/>`);
    assertXmlList(ctx.received(phone), [
      push(`${ALICE}/phone`, "4", `<item jid="${BOB}" subscription="from"/>`),
      `<presence type="unavailable" from="${BOB}/pc" to="${ALICE}"/>`,
    ]);
    assertXmlList(ctx.received(pc), [
      `<presence type="unsubscribe" to="${BOB}" from="${ALICE}"/>`,
      push(`${BOB}/pc`, "4", `<item jid="${ALICE}" subscription="to"/>`),
    ]);
    ctx.clearOutput();

    // 5. alice cancels bob's subscription (§3.2): unavailable first, then none on both sides.
    await input(ctx, chain, phone, `<presence type="unsubscribed" to="${BOB}"/>`);
    assertXmlList(ctx.received(pc), [
      `<presence type="unavailable" from="${ALICE}/phone" to="${BOB}"/>`,
      `<presence type="unsubscribed" to="${BOB}" from="${ALICE}"/>`,
      push(`${BOB}/pc`, "5", `<item jid="${ALICE}" subscription="none"/>`),
    ]);
    assertXmlList(ctx.received(phone), [
      push(`${ALICE}/phone`, "5", `<item jid="${BOB}" subscription="none"/>`),
    ]);
    ctx.clearOutput();

    // Nothing left to cancel: no route, no change.
    await input(ctx, chain, phone, `<presence type="unsubscribed" to="${BOB}"/>`);
    await input(ctx, chain, pc, `<presence type="unsubscribed" to="${ALICE}"/>`);
    assert.deepEqual(ctx.written, []);
  });

  it("denies a request with unsubscribed (§3.2, A.2.4)", async () => {
    await input(ctx, chain, phone, `<presence type="subscribe" to="${BOB}"/>`);
    ctx.clearOutput();
    await input(ctx, chain, pc, `<presence type="unsubscribed" to="${ALICE}"/>`);
    assertXmlList(ctx.received(pc), []);
    assertXmlList(ctx.received(phone), [
      `<presence type="unsubscribed" to="${ALICE}" from="${BOB}"/>`,
      push(`${ALICE}/phone`, "2", `<item jid="${BOB}" subscription="none"/>`),
    ]);
    assert.deepEqual(await pending(BOB), []);
  });

  it("withdraws a request with unsubscribe (A.2.2, A.3.2)", async () => {
    await input(ctx, chain, phone, `<presence type="subscribe" to="${BOB}"/>`);
    ctx.clearOutput();
    await input(ctx, chain, phone, `<presence type="unsubscribe" to="${BOB}"/>`);
    assertXmlList(ctx.received(phone), [
      push(`${ALICE}/phone`, "2", `<item jid="${BOB}" subscription="none"/>`),
    ]);
    assertXmlList(ctx.received(pc), [`<presence type="unsubscribe" to="${BOB}" from="${ALICE}"/>`]);
    assert.deepEqual(await pending(BOB), []);
  });

  it("ignores an approval nobody asked for on the receiving side (A.3.3)", async () => {
    await item(BOB, ALICE, "none");
    await ctx.stores.rosters.addPendingIn(
      BOB,
      ALICE,
      `<presence type="subscribe" from="${ALICE}" to="${BOB}"/>`,
      100,
    );
    ctx.clearOutput();
    await input(ctx, chain, pc, `<presence type="subscribed" to="${ALICE}"/>`);
    // bob's side records the approval; alice never asked, so she gets no subscribed or push.
    assertXmlList(ctx.received(pc), [
      push(`${BOB}/pc`, "2", `<item jid="${ALICE}" subscription="from"/>`),
    ]);
    assertXmlList(ctx.received(phone), [`<presence from="${BOB}/pc" to="${ALICE}"/>`]);
    assert.equal(await itemOf(ALICE, BOB), undefined);

    async function item(owner: string, jid: string, subscription: RosterItem["subscription"]) {
      await seedItem(ctx, owner, { jid, subscription, groups: [] });
    }
  });

  it("pre-approves with subscribed, then approves the request at once (§3.4)", async () => {
    await input(ctx, chain, pc, `<presence type="subscribed" to="${ALICE}"/>`);
    assertXmlList(ctx.received(pc), [
      push(`${BOB}/pc`, "1", `<item jid="${ALICE}" subscription="none" approved="true"/>`),
    ]);
    assertXmlList(ctx.received(phone), [], "a pre-approval is not routed");
    ctx.clearOutput();

    await input(ctx, chain, phone, `<presence type="subscribe" to="${BOB}"/>`);
    assertXmlList(ctx.received(pc), [
      push(`${BOB}/pc`, "2", `<item jid="${ALICE}" subscription="from"/>`),
    ]);
    assertXmlList(ctx.received(phone), [
      push(`${ALICE}/phone`, "1", `<item jid="${BOB}" subscription="none" ask="subscribe"/>`),
      `<presence type="subscribed" from="${BOB}" to="${ALICE}"/>`,
      push(`${ALICE}/phone`, "2", `<item jid="${BOB}" subscription="to"/>`),
      `<presence from="${BOB}/pc" to="${ALICE}"/>`,
    ]);
    assert.deepEqual(await pending(BOB), []);
    assert.deepEqual(await itemOf(BOB, ALICE), { jid: ALICE, subscription: "from", groups: [] });
  });

  it("cancels a pre-approval with unsubscribed, without routing it (§3.4)", async () => {
    await input(ctx, chain, pc, `<presence type="subscribed" to="${ALICE}"/>`);
    await input(ctx, chain, pc, `<presence type="unsubscribed" to="${ALICE}"/>`);
    assertXmlList(ctx.received(pc), [
      push(`${BOB}/pc`, "1", `<item jid="${ALICE}" subscription="none" approved="true"/>`),
      push(`${BOB}/pc`, "2", `<item jid="${ALICE}" subscription="none"/>`),
    ]);
    assertXmlList(ctx.received(phone), []);
    ctx.clearOutput();
    await input(ctx, chain, phone, `<presence type="subscribe" to="${BOB}"/>`);
    assertXmlList(ctx.received(pc), [`<presence type="subscribe" to="${BOB}" from="${ALICE}"/>`]);
  });

  it("keeps a request to an offline contact and delivers it when they log in (§3.1.3)", async () => {
    await ctx.disconnect(chain, pc);
    ctx.clearOutput();
    await input(ctx, chain, phone, `<presence type="subscribe" to="${BOB}"/>`);
    assert.deepEqual(await pending(BOB), [ALICE]);
    const laptop = await ctx.connect(`${BOB}/laptop`);
    await input(ctx, chain, laptop, `<presence/>`);
    assertXmlList(ctx.received(laptop), [
      `<presence from="${BOB}/laptop" to="${BOB}/laptop"/>`,
      `<presence type="subscribe" to="${BOB}" from="${ALICE}"/>`,
    ]);
  });

  it("ignores subscription stanzas to users that do not exist (§8.5.1)", async () => {
    await input(ctx, chain, phone, `<presence type="subscribe" to="nobody@example.com"/>`);
    await input(ctx, chain, phone, `<presence type="subscribe" to="example.com"/>`);
    assertXmlList(ctx.received(phone), [
      push(
        `${ALICE}/phone`,
        "1",
        `<item jid="nobody@example.com" subscription="none" ask="subscribe"/>`,
      ),
    ]);
    assert.equal(ctx.written.length, 1);
  });

  it("answers a subscription stanza without 'to' with bad-request", async () => {
    await input(ctx, chain, phone, `<presence type="subscribe" id="x"/>`);
    const [reply] = ctx.received(phone);
    assert.equal(reply.attrs.type, "error");
    assert.ok(
      reply.getChild("error")?.getChild("bad-request", "urn:ietf:params:xml:ns:xmpp-stanzas"),
    );
  });

  it("handles a self-subscription without echoing presence twice", async () => {
    await input(ctx, chain, phone, `<presence type="subscribe" to="${ALICE}"/>`);
    await input(ctx, chain, phone, `<presence type="subscribed" to="${ALICE}"/>`);
    assert.equal((await itemOf(ALICE, ALICE))?.subscription, "both");
    ctx.clearOutput();
    await input(ctx, chain, phone, `<presence><show>away</show></presence>`);
    assertXmlList(ctx.received(phone), [
      `<presence from="${ALICE}/phone" to="${ALICE}/phone"><show>away</show></presence>`,
    ]);
  });

  describe("limits (config.rosterMaxItems)", () => {
    it("refuses a request or pre-approval that would add an item past the limit, routing nothing", async () => {
      ctx.config.rosterMaxItems = 1;
      await seedItem(ctx, ALICE, { jid: CAROL, subscription: "none", groups: [] });
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence type="subscribe" to="${BOB}" id="s1"/>`);
      await input(ctx, chain, phone, `<presence type="subscribed" to="${BOB}" id="s2"/>`);
      const replies = ctx.received(phone);
      assert.deepEqual(
        replies.map((r) => [
          r.attrs.id,
          r.attrs.from,
          conditionOf(r),
          r.getChild("error")?.attrs.type,
        ]),
        [
          ["s1", BOB, "policy-violation", "cancel"],
          ["s2", BOB, "policy-violation", "cancel"],
        ],
      );
      assertXmlList(ctx.received(pc), []);
      assert.equal(await itemOf(ALICE, BOB), undefined);
      assert.deepEqual(await pending(BOB), []);
      assert.equal((await ctx.stores.rosters.get(ALICE)).version, "1");
    });

    it("keeps a request to a user with a full roster as pending-in, creating no item there", async () => {
      ctx.config.rosterMaxItems = 1;
      await seedItem(ctx, BOB, { jid: CAROL, subscription: "none", groups: [] });
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence type="subscribe" to="${BOB}"/>`);
      assertXmlList(ctx.received(pc), [`<presence type="subscribe" to="${BOB}" from="${ALICE}"/>`]);
      assert.deepEqual(await pending(BOB), [ALICE]);
      assert.equal(await itemOf(BOB, ALICE), undefined);
      assert.equal((await ctx.stores.rosters.get(BOB)).items.length, 1);

      // Approving would add alice to bob's full roster: refused, and the request stays.
      ctx.clearOutput();
      await input(ctx, chain, pc, `<presence type="subscribed" to="${ALICE}" id="ok"/>`);
      const replies = ctx.received(pc);
      assert.deepEqual(
        replies.map((r) => [r.attrs.id, conditionOf(r)]),
        [["ok", "policy-violation"]],
      );
      assertXmlList(ctx.received(phone), []);
      assert.deepEqual(await pending(BOB), [ALICE]);
      assert.deepEqual(await itemOf(ALICE, BOB), {
        jid: BOB,
        subscription: "none",
        ask: "subscribe",
        groups: [],
      });
    });

    it("drops a request past the limit of pending requests, with a warning", async () => {
      ctx.config.rosterMaxItems = 1;
      await ctx.stores.rosters.addPendingIn(BOB, CAROL, `<presence type="subscribe"/>`, 1);
      const logs = captureLogs(ctx);
      ctx.clearOutput();
      await input(ctx, chain, phone, `<presence type="subscribe" to="${BOB}"/>`);
      // alice's side goes ahead (her item records the request); bob's side drops it.
      assertXmlList(ctx.received(phone), [
        push(`${ALICE}/phone`, "1", `<item jid="${BOB}" subscription="none" ask="subscribe"/>`),
      ]);
      assertXmlList(ctx.received(pc), []);
      assert.deepEqual(await pending(BOB), [CAROL]);
      const warning = logs.find((l) => l.level === 40);
      assert.ok(warning, JSON.stringify(logs));
      assert.equal(warning.jid, BOB);
      assert.equal(warning.contact, ALICE);

      // An answer to an earlier request is no new request: it always gets through.
      await input(ctx, chain, pc, `<presence type="subscribed" to="${CAROL}"/>`);
      assert.deepEqual(await pending(BOB), []);
    });

    it("drops a request past pendingSubscriptionMaxBytes of stored requests, with a warning", async () => {
      ctx.config.pendingSubscriptionMaxBytes = 200;
      const fromCarol = `<presence type="subscribe"><status>${"c".repeat(100)}</status></presence>`;
      await ctx.stores.rosters.addPendingIn(BOB, CAROL, fromCarol, 10, 200);
      const logs = captureLogs(ctx);
      // Stored verbatim, status included: alice's request does not fit next to carol's.
      await input(
        ctx,
        chain,
        phone,
        `<presence type="subscribe" to="${BOB}"><status>${"a".repeat(50)}</status></presence>`,
      );
      assert.deepEqual(await pending(BOB), [CAROL]);
      const warning = logs.find((l) => l.level === 40);
      assert.ok(warning, JSON.stringify(logs));
      assert.equal(warning.contact, ALICE);
      assert.equal(warning.maxBytes, 200);
      // Once carol's is answered there is room for it.
      await input(ctx, chain, pc, `<presence type="subscribed" to="${CAROL}"/>`);
      await input(ctx, chain, phone, `<presence type="unsubscribe" to="${BOB}"/>`);
      await input(
        ctx,
        chain,
        phone,
        `<presence type="subscribe" to="${BOB}"><status>${"a".repeat(50)}</status></presence>`,
      );
      assert.deepEqual(await pending(BOB), [ALICE]);
    });
  });

  describe("concurrent changes", () => {
    it("re-applies an inbound approval when the item changed in between (no lost update)", async () => {
      await input(ctx, chain, phone, `<presence type="subscribe" to="${BOB}"/>`);
      ctx.clearOutput();
      // Between the read and the write of alice's item on bob's approval, alice renames bob
      // through another session process.
      const reads = interfereAfterReads(ctx, ALICE, BOB, 1, (current) => ({
        ...(current as RosterItem),
        name: "Robert",
      }));
      await input(ctx, chain, pc, `<presence type="subscribed" to="${ALICE}"/>`);
      assert.equal(reads(), 1);
      assert.deepEqual(await itemOf(ALICE, BOB), {
        jid: BOB,
        name: "Robert",
        subscription: "to",
        groups: [],
      });
      assertXmlList(ctx.received(phone), [
        `<presence type="subscribed" to="${ALICE}" from="${BOB}"/>`,
        push(`${ALICE}/phone`, "3", `<item jid="${BOB}" name="Robert" subscription="to"/>`),
        `<presence from="${BOB}/pc" to="${ALICE}"/>`,
      ]);
    });

    it("re-decides an outbound stanza from the item it commits against", async () => {
      // bob pre-approved alice; alice's request is approved at once unless, between bob's read
      // and write, bob withdraws the pre-approval elsewhere: then it is an ordinary request.
      await input(ctx, chain, pc, `<presence type="subscribed" to="${ALICE}"/>`);
      ctx.clearOutput();
      const reads = interfereAfterReads(ctx, BOB, ALICE, 1, (current) => {
        const withdrawn = { ...(current as RosterItem) };
        delete withdrawn.approved;
        return withdrawn;
      });
      await input(ctx, chain, phone, `<presence type="subscribe" to="${BOB}"/>`);
      assert.equal(reads(), 1);
      assert.deepEqual(await itemOf(BOB, ALICE), { jid: ALICE, subscription: "none", groups: [] });
      assert.deepEqual(await pending(BOB), [ALICE]);
      assertXmlList(ctx.received(pc), [`<presence type="subscribe" to="${BOB}" from="${ALICE}"/>`]);
    });

    it("looks up one pending request, never the whole list, while handling subscriptions", async () => {
      const rosters = ctx.stores.rosters;
      const list = rosters.listPendingIn.bind(rosters);
      let listed = 0;
      rosters.listPendingIn = async (user) => {
        listed++;
        return list(user);
      };
      await input(ctx, chain, phone, `<presence type="subscribe" to="${BOB}"/>`);
      await input(ctx, chain, pc, `<presence type="subscribed" to="${ALICE}"/>`);
      await input(ctx, chain, pc, `<presence type="subscribe" to="${ALICE}"/>`);
      await input(ctx, chain, phone, `<presence type="unsubscribed" to="${BOB}"/>`);
      await input(
        ctx,
        chain,
        phone,
        `<iq type="set" id="r1"><query xmlns="jabber:iq:roster"><item jid="${BOB}" subscription="remove"/></query></iq>`,
      );
      assert.equal(listed, 0);
      assert.deepEqual(await pending(ALICE), []);
      assert.equal(await itemOf(ALICE, BOB), undefined);
    });
  });
});

describe("subscription states (RFC 6121 Appendix A)", () => {
  type Row = [string, string, boolean, string];
  const parseState = (s: string) => ({
    subscription: s.split("+")[0].trim().toLowerCase() as RosterItem["subscription"],
    pendingOut: /Pending Out/.test(s),
    pendingIn: /Pending (Out\/)?In/.test(s),
  });
  const name = (s: { subscription: string; pendingOut: boolean; pendingIn: boolean }) => {
    const base = s.subscription[0].toUpperCase() + s.subscription.slice(1);
    if (s.pendingOut && s.pendingIn) return `${base} + Pending Out/In`;
    if (s.pendingOut) return `${base} + Pending Out`;
    if (s.pendingIn) return `${base} + Pending In`;
    return base;
  };
  const STATES = [
    "None",
    "None + Pending Out",
    "None + Pending In",
    "None + Pending Out/In",
    "To",
    "To + Pending In",
    "From",
    "From + Pending Out",
    "Both",
  ];
  function table(rows: [boolean, string][]): Row[] {
    return rows.map(([flag, next], i) => [STATES[i], "", flag, next === "" ? STATES[i] : next]);
  }

  const outboundTables: Record<"subscribe" | "unsubscribe" | "subscribed" | "unsubscribed", Row[]> =
    {
      // A.2.1 … A.2.4: [route?, new state ("" = no change)] per state, in table order.
      subscribe: table([
        [true, "None + Pending Out"],
        [true, ""],
        [true, "None + Pending Out/In"],
        [true, ""],
        [true, ""],
        [true, ""],
        [true, "From + Pending Out"],
        [true, ""],
        [true, ""],
      ]),
      unsubscribe: table([
        [true, ""],
        [true, "None"],
        [true, ""],
        [true, "None + Pending In"],
        [true, "None"],
        [true, "None + Pending In"],
        [true, ""],
        [true, "From"],
        [true, "From"],
      ]),
      subscribed: table([
        [false, ""],
        [false, ""],
        [true, "From"],
        [true, "From + Pending Out"],
        [false, ""],
        [true, "Both"],
        [false, ""],
        [false, ""],
        [false, ""],
      ]),
      unsubscribed: table([
        [false, ""],
        [false, ""],
        [true, "None"],
        [true, "None + Pending Out"],
        [false, ""],
        [true, "To"],
        [true, "None"],
        [true, "None + Pending Out"],
        [true, "To"],
      ]),
    };
  const inboundTables: typeof outboundTables = {
    // A.3.1 … A.3.4: [deliver?, new state].
    subscribe: table([
      [true, "None + Pending In"],
      [true, "None + Pending Out/In"],
      [false, ""],
      [false, ""],
      [true, "To + Pending In"],
      [false, ""],
      [false, ""],
      [false, ""],
      [false, ""],
    ]),
    unsubscribe: table([
      [false, ""],
      [false, ""],
      [true, "None"],
      [true, "None + Pending Out"],
      [false, ""],
      [true, "To"],
      [true, "None"],
      [true, "None + Pending Out"],
      [true, "To"],
    ]),
    subscribed: table([
      [false, ""],
      [true, "To"],
      [false, ""],
      [true, "To + Pending In"],
      [false, ""],
      [false, ""],
      [false, ""],
      [true, "Both"],
      [false, ""],
    ]),
    unsubscribed: table([
      [false, ""],
      [true, "None"],
      [false, ""],
      [true, "None + Pending In"],
      [true, "None"],
      [true, "None + Pending In"],
      [false, ""],
      [true, "From"],
      [true, "From"],
    ]),
  };

  for (const type of ["subscribe", "unsubscribe", "subscribed", "unsubscribed"] as const) {
    it(`outbound ${type} follows A.2`, () => {
      for (const [state, , route, next] of outboundTables[type]) {
        const step = outbound(type, parseState(state));
        assert.deepEqual([step.route, name(step.next)], [route, next], `${type} from ${state}`);
      }
    });
    it(`inbound ${type} follows A.3`, () => {
      for (const [state, , deliver, next] of inboundTables[type]) {
        const step = inbound(type, parseState(state));
        assert.deepEqual([step.deliver, name(step.next)], [deliver, next], `${type} to ${state}`);
      }
    });
  }

  it("auto-replies to a request from an already subscribed contact (A.3.1 footnote)", () => {
    for (const state of ["From", "From + Pending Out", "Both"])
      assert.equal(inbound("subscribe", parseState(state)).autoReply, true, state);
    assert.equal(inbound("subscribe", parseState("None")).autoReply, false);
  });
});
