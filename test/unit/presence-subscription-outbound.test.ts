// RFC 6121 §3 and Appendix A.2: the user's own subscription stanzas (subscribe, subscribed,
// unsubscribe, unsubscribed), as the user's server processes them before routing them: the
// whole handshake, denial and withdrawal, pre-approval (§3.4), the roster limit, and decisions
// taken against the item they commit to. Through the session core with memory stores.
import { strict as assert } from "node:assert";
import type { ConnState } from "../../services/session/core/connection.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import {
  outbound,
  type SubscriptionType,
} from "../../services/session/features/presence/subscription-state.js";
import type { RosterItem } from "../../services/shared/stores/roster/roster-store.js";
import {
  ALICE,
  BOB,
  CAROL,
  conditionOf,
  parseState,
  push,
  stateName,
  stateTable,
  subscriptionWorld,
  type StateRow,
  type SubscriptionWorld,
} from "../helpers/presence-fixtures.js";
import { interfereAfterReads, seedItem } from "../helpers/roster-fixtures.js";
import { assertXmlList, input, type TestSessionContext } from "../helpers/session-context.js";

describe("subscriptions (RFC 6121 §3)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let phone: ConnState; // alice, interested and available
  let pc: ConnState; // bob, interested and available
  let itemOf: SubscriptionWorld["itemOf"];
  let pending: SubscriptionWorld["pending"];

  beforeEach(async () => {
    ({ ctx, chain, phone, pc, itemOf, pending } = await subscriptionWorld());
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
  });

  describe("concurrent changes", () => {
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
  });
});

describe("subscription states (RFC 6121 Appendix A)", () => {
  const outboundTables: Record<SubscriptionType, StateRow[]> = {
    // A.2.1 … A.2.4: [route?, new state ("" = no change)] per state, in table order.
    subscribe: stateTable([
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
    unsubscribe: stateTable([
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
    subscribed: stateTable([
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
    unsubscribed: stateTable([
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

  for (const type of ["subscribe", "unsubscribe", "subscribed", "unsubscribed"] as const) {
    it(`outbound ${type} follows A.2`, () => {
      for (const [state, , route, next] of outboundTables[type]) {
        const step = outbound(type, parseState(state));
        assert.deepEqual(
          [step.route, stateName(step.next)],
          [route, next],
          `${type} from ${state}`,
        );
      }
    });
  }
});
