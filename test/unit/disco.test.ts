// XEP-0030 (service discovery), XEP-0092 (software version) and XEP-0199 (ping), answered by
// the server for itself and on behalf of local accounts (RFC 6121 §8.5), through the real
// session core and the full handler chain.
import type { ConnState } from "../../services/session/core/connection.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import { SERVER_NAME, SERVER_VERSION } from "../../services/session/features/version/version.js";
import { buildHandlerChain } from "../../services/session/session-service.js";
import { TestSessionContext, assertXmlList, input } from "../helpers/session-context.js";

const ALICE = "alice@example.com";
const BOB = "bob@example.com";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const INFO = "http://jabber.org/protocol/disco#info";
const ITEMS = "http://jabber.org/protocol/disco#items";

function iqError(id: string, from: string, condition: string): string {
  return (
    `<iq type="error" id="${id}" to="${ALICE}/phone" from="${from}">` +
    `<error type="cancel"><${condition} xmlns="${STANZAS}"/></error></iq>`
  );
}

describe("disco, version and ping (XEP-0030, XEP-0092, XEP-0199)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let phone: ConnState;

  async function ask(xml: string): Promise<void> {
    await input(ctx, chain, phone, xml);
  }

  beforeEach(async () => {
    ctx = new TestSessionContext();
    chain = buildHandlerChain();
    phone = await ctx.connect(`${ALICE}/phone`);
    await ctx.createAccount(BOB);
  });

  describe("disco#info (XEP-0030 §3.1)", () => {
    it("describes the server: identity server/im and its features, ping included", async () => {
      await ask(`<iq type="get" id="d1" to="example.com"><query xmlns="${INFO}"/></iq>`);
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="d1" from="example.com" to="${ALICE}/phone"><query xmlns="${INFO}">` +
          `<identity category="server" type="im" name="${SERVER_NAME}"/>` +
          `<feature var="${INFO}"/>` +
          `<feature var="${ITEMS}"/>` +
          `<feature var="urn:xmpp:ping"/>` +
          `<feature var="jabber:iq:version"/>` +
          `<feature var="urn:xmpp:features:rosterver"/>` +
          `<feature var="msgoffline"/>` +
          `<feature var="jabber:iq:roster"/>` +
          `<feature var="urn:xmpp:delay"/>` +
          `</query></iq>`,
      ]);
    });

    it("describes an existing account: identity account/registered", async () => {
      await ask(`<iq type="get" id="d2" to="${BOB}"><query xmlns="${INFO}"/></iq>`);
      await ask(`<iq type="get" id="d3"><query xmlns="${INFO}"/></iq>`);
      const account = `<identity category="account" type="registered"/><feature var="${INFO}"/>`;
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="d2" from="${BOB}" to="${ALICE}/phone"><query xmlns="${INFO}">${account}</query></iq>`,
        // No `to` is the user's own account (RFC 6120 §10.3.3).
        `<iq type="result" id="d3" to="${ALICE}/phone"><query xmlns="${INFO}">${account}</query></iq>`,
      ]);
    });

    it("answers for an unknown account with service-unavailable (RFC 6121 §8.5.1)", async () => {
      await ask(`<iq type="get" id="d4" to="nobody@example.com"><query xmlns="${INFO}"/></iq>`);
      await ask(`<iq type="get" id="d5" to="nobody@example.com"><query xmlns="${ITEMS}"/></iq>`);
      assertXmlList(ctx.received(phone), [
        iqError("d4", "nobody@example.com", "service-unavailable"),
        iqError("d5", "nobody@example.com", "service-unavailable"),
      ]);
    });

    it("answers a query for a node with item-not-found", async () => {
      await ask(
        `<iq type="get" id="d6" to="example.com"><query xmlns="${INFO}" node="urn:x:node"/></iq>`,
      );
      await ask(`<iq type="get" id="d7" to="${BOB}"><query xmlns="${INFO}" node="n"/></iq>`);
      await ask(`<iq type="get" id="d8" to="example.com"><query xmlns="${ITEMS}" node="n"/></iq>`);
      assertXmlList(ctx.received(phone), [
        iqError("d6", "example.com", "item-not-found"),
        iqError("d7", BOB, "item-not-found"),
        iqError("d8", "example.com", "item-not-found"),
      ]);
    });

    it("refuses disco#info set with service-unavailable", async () => {
      await ask(`<iq type="set" id="d9" to="example.com"><query xmlns="${INFO}"/></iq>`);
      assertXmlList(ctx.received(phone), [iqError("d9", "example.com", "service-unavailable")]);
    });

    it("passes a query to an online full JID on to that client", async () => {
      const bobPc = await ctx.connect(`${BOB}/pc`);
      await ask(`<iq type="get" id="d10" to="${BOB}/pc"><query xmlns="${INFO}"/></iq>`);
      assertXmlList(ctx.received(bobPc), [
        `<iq type="get" id="d10" to="${BOB}/pc" from="${ALICE}/phone"><query xmlns="${INFO}"/></iq>`,
      ]);
      assertXmlList(ctx.received(phone), []);
    });
  });

  describe("disco#items (XEP-0030 §4)", () => {
    it("lists no items for the server or an account", async () => {
      await ask(`<iq type="get" id="i1" to="example.com"><query xmlns="${ITEMS}"/></iq>`);
      await ask(`<iq type="get" id="i2" to="${BOB}"><query xmlns="${ITEMS}"/></iq>`);
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="i1" from="example.com" to="${ALICE}/phone"><query xmlns="${ITEMS}"/></iq>`,
        `<iq type="result" id="i2" from="${BOB}" to="${ALICE}/phone"><query xmlns="${ITEMS}"/></iq>`,
      ]);
    });
  });

  describe("software version (XEP-0092)", () => {
    it("gives the server's name and version", async () => {
      await ask(`<iq type="get" id="v1" to="example.com"><query xmlns="jabber:iq:version"/></iq>`);
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="v1" from="example.com" to="${ALICE}/phone"><query xmlns="jabber:iq:version">` +
          `<name>${SERVER_NAME}</name><version>${SERVER_VERSION}</version></query></iq>`,
      ]);
    });

    it("does not answer for another account", async () => {
      await ask(`<iq type="get" id="v2" to="${BOB}"><query xmlns="jabber:iq:version"/></iq>`);
      assertXmlList(ctx.received(phone), [iqError("v2", BOB, "service-unavailable")]);
    });
  });

  describe("ping (XEP-0199)", () => {
    it("answers a ping to the server with an empty result", async () => {
      await ask(`<iq type="get" id="p1" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`);
      await ask(`<iq type="get" id="p2"><ping xmlns="urn:xmpp:ping"/></iq>`);
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="p1" from="example.com" to="${ALICE}/phone"/>`,
        `<iq type="result" id="p2" to="${ALICE}/phone"/>`,
      ]);
    });

    it("answers a ping to another account's bare JID on its behalf", async () => {
      await ask(`<iq type="get" id="p3" to="${BOB}"><ping xmlns="urn:xmpp:ping"/></iq>`);
      assertXmlList(ctx.received(phone), [
        `<iq type="result" id="p3" from="${BOB}" to="${ALICE}/phone"/>`,
      ]);
    });

    // RFC 6121 §8.5.1: "If the user account identified by the 'to' attribute does not exist
    // ... For an IQ stanza, the server MUST return a <service-unavailable/> stanza error".
    it("answers a ping to an account that does not exist with service-unavailable", async () => {
      await ask(
        `<iq type="get" id="p4" to="nobody@example.com"><ping xmlns="urn:xmpp:ping"/></iq>`,
      );
      assertXmlList(ctx.received(phone), [
        iqError("p4", "nobody@example.com", "service-unavailable"),
      ]);
    });

    it("passes a ping to an online full JID on to that client", async () => {
      const bobPc = await ctx.connect(`${BOB}/pc`);
      await ask(`<iq type="get" id="p5" to="${BOB}/pc"><ping xmlns="urn:xmpp:ping"/></iq>`);
      assertXmlList(ctx.received(bobPc), [
        `<iq type="get" id="p5" to="${BOB}/pc" from="${ALICE}/phone"><ping xmlns="urn:xmpp:ping"/></iq>`,
      ]);
    });
  });
});
