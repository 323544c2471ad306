// RFC 6121 §4.3 (presence probes) sent by a client: answered from the route store for a
// contact the user is subscribed to, ignored otherwise. Through the session core with memory
// stores.
import assert from "node:assert/strict";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import {
  ALICE,
  BOB,
  CAROL,
  presenceWorld,
  type PresenceWorld,
} from "../helpers/presence-fixtures.js";
import { assertXmlList, input, type TestSessionContext } from "../helpers/session-context.js";

describe("presence (RFC 6121 §4)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let item: PresenceWorld["item"];
  let online: PresenceWorld["online"];
  beforeEach(() => {
    ({ ctx, chain, item, online } = presenceWorld());
  });

  describe("probes at login (§4.2.2)", () => {
    it("come from the roster the initial presence's broadcast read: one roster read", async () => {
      await item(ALICE, BOB, "both");
      await item(BOB, ALICE, "both");
      await online(`${BOB}/pc`, `<presence><show>away</show></presence>`);
      const rosters = ctx.stores.rosters;
      const original = rosters.get.bind(rosters);
      let reads = 0;
      rosters.get = (user) => {
        reads++;
        return original(user);
      };
      try {
        const phone = await online(`${ALICE}/phone`);
        assert.equal(reads, 1);
        assert.ok(
          ctx
            .received(phone)
            .map(String)
            .some((xml) => xml.includes(`from="${BOB}/pc"`) && xml.includes("<show>away</show>")),
          "the probe of bob was answered",
        );
      } finally {
        rosters.get = original;
      }
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
