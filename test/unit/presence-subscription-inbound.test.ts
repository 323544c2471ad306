// RFC 6121 §3 and Appendix A.3: subscription stanzas as the contact's server processes them
// on arrival: requests kept pending (§3.1.3) within rosterMaxItems and
// pendingSubscriptionMaxBytes and delivered at login, approvals nobody asked for, stanzas to
// users that do not exist (§8.5.1), the automatic reply to a subscribed contact, and changes
// re-applied against a concurrently changed item. Through the session core with memory stores.
import { strict as assert } from "node:assert";
import type { ConnState } from "../../services/session/core/connection.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import {
  inbound,
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
import { captureLogs, interfereAfterReads, seedItem } from "../helpers/roster-fixtures.js";
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

  describe("limits (config.rosterMaxItems)", () => {
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
  const inboundTables: Record<SubscriptionType, StateRow[]> = {
    // A.3.1 … A.3.4: [deliver?, new state].
    subscribe: stateTable([
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
    unsubscribe: stateTable([
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
    subscribed: stateTable([
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
    unsubscribed: stateTable([
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
    it(`inbound ${type} follows A.3`, () => {
      for (const [state, , deliver, next] of inboundTables[type]) {
        const step = inbound(type, parseState(state));
        assert.deepEqual(
          [step.deliver, stateName(step.next)],
          [deliver, next],
          `${type} to ${state}`,
        );
      }
    });
  }

  it("auto-replies to a request from an already subscribed contact (A.3.1 footnote)", () => {
    for (const state of ["From", "From + Pending Out", "Both"])
      assert.equal(inbound("subscribe", parseState(state)).autoReply, true, state);
    assert.equal(inbound("subscribe", parseState("None")).autoReply, false);
  });
});
