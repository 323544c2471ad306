// RFC 6121 §4.2 (initial presence), §4.4 (updates) and §4.5 (unavailable presence, on the
// client's behalf at disconnect and at a resource takeover), through the session core with
// memory stores.
import { strict as assert } from "node:assert";
import { parse } from "ltx";
import { newConnState, type ConnState } from "../../services/session/core/connection.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import { readPriority } from "../../services/session/features/presence/broadcast.js";
import {
  ALICE,
  BOB,
  CAROL,
  DAVE,
  ERIN,
  NS_BIND,
  presenceWorld,
  type PresenceWorld,
} from "../helpers/presence-fixtures.js";
import {
  assertXml,
  assertXmlList,
  input,
  type TestSessionContext,
} from "../helpers/session-context.js";

describe("presence (RFC 6121 §4)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let hookCalls: string[];
  let item: PresenceWorld["item"];
  let online: PresenceWorld["online"];
  let directedOf: PresenceWorld["directedOf"];
  beforeEach(() => {
    ({ ctx, chain, hookCalls, item, online, directedOf } = presenceWorld());
  });

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
      hookCalls.length = 0;

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
      hookCalls.length = 0;
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
});
