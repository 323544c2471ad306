// XEP-0388 (SASL2), XEP-0386 (Bind 2) and XEP-0484 (FAST with HT-SHA-256-NONE) through the real
// session core (handleFrame) with memory stores. The HT client side is computed here with
// node:crypto from draft-schmaus-kitten-sasl-ht, not with the server's code; SCRAM-SHA-256 uses
// the independent client in test/helpers.
import { strict as assert } from "node:assert";
import { createHmac, randomBytes } from "node:crypto";
import type { Element } from "ltx";
import { newConnState, type ConnState } from "../../services/session/core/connection.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import { createAccount } from "../../services/session/core/sasl/sasl-credentials.js";
import { buildHandlerChain } from "../../services/session/session-service.js";
import { ScramSha256Mechanism } from "../helpers/sasl-scram-sha-256.js";
import { TestSessionContext, assertXmlList, input } from "../helpers/session-context.js";

const FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
const SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const SASL2 = "urn:xmpp:sasl:2";
const BIND2 = "urn:xmpp:bind:0";
const FAST = "urn:xmpp:fast:0";
const SM = "urn:xmpp:sm:3";
const ALICE = "alice@example.com";
const PASSWORD = "correct horse";
const AGENT = "d4565fa7-4d72-4749-b3d3-740edbf87770";
const HT = "HT-SHA-256-NONE";

const b64 = (data: string | Buffer) =>
  (typeof data === "string" ? Buffer.from(data, "utf8") : data).toString("base64");
const plain = (user: string, password: string) => b64(`\0${user}\0${password}`);
const userAgent = (id = AGENT) => `<user-agent id="${id}"><software>test</software></user-agent>`;
const failure = (condition: string, text?: string) =>
  `<failure xmlns="${SASL2}"><${condition} xmlns="${SASL}"/>` +
  `${text === undefined ? "" : `<text>${text}</text>`}</failure>`;
/** The HT-SHA-256-NONE initiator message: authcid NUL HMAC(token, "Initiator"). */
const htInitiator = (user: string, token: string) =>
  b64(
    Buffer.concat([
      Buffer.from(`${user}\0`, "utf8"),
      createHmac("sha256", token).update("Initiator").digest(),
    ]),
  );
const htResponder = (token: string) =>
  b64(createHmac("sha256", token).update("Responder").digest());

describe("SASL2 (XEP-0388), Bind 2 (XEP-0386) and FAST (XEP-0484)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let conn: ConnState;

  async function opened(): Promise<ConnState> {
    const c = newConnState(`edge-test.0.${randomBytes(4).toString("hex")}`, "edge-test", 0, 0);
    await input(ctx, chain, c, `<open xmlns="${FRAMING}" to="example.com" version="1.0"/>`);
    assert.equal(c.stage, "opened");
    ctx.clearOutput();
    return c;
  }

  async function send(xml: string, on: ConnState = conn): Promise<Element[]> {
    ctx.clearOutput();
    await input(ctx, chain, on, xml);
    return ctx.received(on);
  }

  function authenticatePlain(inline = "", mechanism = "PLAIN"): string {
    return (
      `<authenticate xmlns="${SASL2}" mechanism="${mechanism}">` +
      `<initial-response>${plain("alice", PASSWORD)}</initial-response>${inline}</authenticate>`
    );
  }

  function authenticateFast(token: string, fast = `<fast xmlns="${FAST}"/>`, agent = AGENT) {
    return (
      `<authenticate xmlns="${SASL2}" mechanism="${HT}">` +
      `<initial-response>${htInitiator("alice", token)}</initial-response>` +
      `${userAgent(agent)}${fast}</authenticate>`
    );
  }

  /** Logs in with PLAIN on a new connection asking for a token; returns the token. */
  async function requestToken(agent = AGENT): Promise<string> {
    const c = await opened();
    const [success] = await send(
      authenticatePlain(`${userAgent(agent)}<request-token xmlns="${FAST}" mechanism="${HT}"/>`),
      c,
    );
    const token = success?.getChild("token", FAST)?.attrs.token;
    assert.ok(token, `a token in ${success?.toString()}`);
    return token;
  }

  beforeEach(async () => {
    // PLAIN and FAST are offered only on secure connections: these are, behind a TLS proxy.
    ctx = new TestSessionContext({ config: { tlsTerminatedByProxy: true } });
    chain = buildHandlerChain();
    await ctx.stores.accounts.create(ALICE, createAccount(PASSWORD, 4096));
    conn = await opened();
  });

  describe("SASL2", () => {
    it("authenticates with no restart: <success/> with the bare JID, then the bind features", async () => {
      const out = await send(authenticatePlain());
      assert.equal(out.length, 2);
      assertXmlList(
        [out[0]!],
        [
          `<success xmlns="${SASL2}"><authorization-identifier>${ALICE}</authorization-identifier></success>`,
        ],
      );
      assert.equal(out[1]?.name, "stream:features");
      assert.ok(out[1]?.getChild("bind", "urn:ietf:params:xml:ns:xmpp-bind"));
      assert.ok(out[1]?.getChild("sm", SM));
      assert.equal(conn.stage, "restarted");
      assert.equal(conn.bareJid, ALICE);
      // RFC 6120 binding follows at once, on the same stream.
      const [bound] = await send(
        `<iq type="set" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>pc</resource></bind></iq>`,
      );
      assert.equal(bound?.getChild("bind")?.getChildText("jid"), `${ALICE}/pc`);
      assert.equal(conn.stage, "bound");
    });

    it("runs SCRAM-SHA-256 with a challenge and a response, server-final as additional data", async () => {
      const client = new ScramSha256Mechanism();
      const first = client.response({ username: "alice", password: PASSWORD });
      const [challenge] = await send(
        `<authenticate xmlns="${SASL2}" mechanism="SCRAM-SHA-256">` +
          `<initial-response>${b64(Buffer.from(first, "latin1"))}</initial-response></authenticate>`,
      );
      assert.equal(challenge?.name, "challenge");
      assert.equal(challenge?.attrs.xmlns, SASL2);
      client.challenge(Buffer.from(challenge.getText(), "base64").toString("latin1"));
      const final = client.response({ username: "alice", password: PASSWORD });
      const [success] = await send(
        `<response xmlns="${SASL2}">${b64(Buffer.from(final, "latin1"))}</response>`,
      );
      assert.equal(success?.name, "success");
      const serverFinal = Buffer.from(success.getChildText("additional-data") ?? "", "base64");
      assert.ok(client.verifyServerFinal(serverFinal.toString("utf8")), "the server signature");
      assert.equal(success.getChildText("authorization-identifier"), ALICE);
      assert.equal(conn.sasl, undefined);
      assert.equal(conn.sasl2, undefined);
    });

    it("asks for a missing initial response with an empty challenge", async () => {
      assertXmlList(await send(`<authenticate xmlns="${SASL2}" mechanism="PLAIN"/>`), [
        `<challenge xmlns="${SASL2}"/>`,
      ]);
      const [success] = await send(
        `<response xmlns="${SASL2}">${plain("alice", PASSWORD)}</response>`,
      );
      assert.equal(success?.name, "success");
    });

    it("fails an unknown mechanism with invalid-mechanism, in the SASL2 namespace", async () => {
      assertXmlList(
        await send(
          `<authenticate xmlns="${SASL2}" mechanism="X-UNKNOWN"><initial-response>AA==</initial-response></authenticate>`,
        ),
        [failure("invalid-mechanism")],
      );
      assert.equal(conn.stage, "opened");
      assert.equal(conn.authFailures, 1);
      assert.deepEqual(ctx.closed, []);
    });

    it("fails a wrong password with not-authorized and lets the client retry", async () => {
      const wrong = `<authenticate xmlns="${SASL2}" mechanism="PLAIN"><initial-response>${plain("alice", "wrong")}</initial-response><bind xmlns="${BIND2}"/></authenticate>`;
      assertXmlList(await send(wrong), [failure("not-authorized")]);
      assert.equal(conn.bareJid, undefined);
      assert.deepEqual(await ctx.stores.routes.list(ALICE), []);
      const [success] = await send(authenticatePlain());
      assert.equal(success?.name, "success");
    });

    it("fails malformed requests precisely, before any work", async () => {
      for (const [request, text] of [
        [`<authenticate xmlns="${SASL2}"/>`, "&lt;authenticate/&gt; names no mechanism"],
        [`<response xmlns="${SASL2}">AA==</response>`, "no SASL2 exchange in progress"],
        [`<next xmlns="${SASL2}" task="TOTP"/>`, "unexpected &lt;next/&gt;"],
        [
          authenticatePlain(`<user-agent id=""/>`),
          "&lt;user-agent id/&gt; must be 1 to 128 characters",
        ],
      ]) {
        ctx = new TestSessionContext({ config: { tlsTerminatedByProxy: true } });
        await ctx.stores.accounts.create(ALICE, createAccount(PASSWORD, 4096));
        conn = await opened();
        assertXmlList(await send(request), [failure("malformed-request", text)], request);
        assert.equal(conn.stage, "opened");
      }
    });

    it("fails an aborted exchange with aborted", async () => {
      await send(`<authenticate xmlns="${SASL2}" mechanism="PLAIN"/>`);
      assertXmlList(await send(`<abort xmlns="${SASL2}"/>`), [failure("aborted")]);
      assert.equal(conn.saslAwaiting, undefined);
    });

    it("closes the stream with policy-violation after maxAuthFailures", async () => {
      for (let i = 0; i < ctx.config.maxAuthFailures; i++)
        await send(authenticatePlain().replace(plain("alice", PASSWORD), plain("alice", "no")));
      assert.deepEqual(
        ctx.closed.map((c) => c.condition),
        ["policy-violation"],
      );
    });

    it("refuses <authenticate/> before the stream is open and after binding (stream errors)", async () => {
      const early = newConnState("edge-test.0.early", "edge-test", 0, 0);
      await send(authenticatePlain(), early);
      const bound = await ctx.connect(`${ALICE}/pc`);
      await send(authenticatePlain(), bound);
      assert.deepEqual(
        ctx.closed.map((c) => [c.connId, c.condition]),
        [
          [early.connId, "not-authorized"],
          [bound.connId, "unsupported-stanza-type"],
        ],
      );
    });

    it("lets a client resume (XEP-0198) after SASL2 without Bind 2, instead of binding", async () => {
      await send(authenticatePlain());
      assert.equal(conn.stage, "restarted");
      assertXmlList(await send(`<resume xmlns="${SM}" previd="0.abc" h="3"/>`), []);
      assert.equal(conn.stage, "resuming");
      assert.deepEqual(ctx.resumeRequests, [
        { connId: conn.connId, request: { previd: "0.abc", h: 3, jid: ALICE } },
      ]);
    });

    it("does not let a legacy <response/> finish an exchange begun in SASL2", async () => {
      await send(`<authenticate xmlns="${SASL2}" mechanism="PLAIN"/>`);
      const [out] = await send(`<response xmlns="${SASL}">${plain("alice", PASSWORD)}</response>`);
      assert.equal(out?.name, "failure");
      assert.equal(out?.attrs.xmlns, SASL);
      assert.equal(conn.bareJid, undefined);
    });
  });

  describe("Bind 2", () => {
    const bindRequest = (tag = "phone", extra = `<enable xmlns="${SM}" resume="true"/>`) =>
      `<bind xmlns="${BIND2}"><tag>${tag}</tag>${extra}</bind>`;

    it("binds <tag>/<id> in the same round trip, enables stream management inline", async () => {
      const out = await send(authenticatePlain(userAgent() + bindRequest()));
      const success = out[0]!;
      const jid = success.getChildText("authorization-identifier") ?? "";
      assert.match(jid, /^alice@example\.com\/phone\/[0-9a-f]{12}$/);
      assert.ok(!jid.includes(AGENT), "the user-agent id is not revealed");
      const enabled = success.getChild("bound", BIND2)?.getChild("enabled", SM);
      assert.equal(enabled?.attrs.resume, "true");
      assert.equal(enabled?.attrs.id, conn.sm?.id);
      assert.equal(conn.stage, "bound");
      assert.equal(`${conn.bareJid}/${conn.resource}`, jid);
      const routes = await ctx.stores.routes.list(ALICE);
      assert.deepEqual(
        routes.map((r) => [r.resource, r.connId]),
        [[conn.resource, conn.connId]],
      );
      // The features that follow offer neither binding nor stream management again.
      const features = out[1]!;
      assert.equal(features.name, "stream:features");
      assert.equal(features.getChild("bind", "urn:ietf:params:xml:ns:xmpp-bind"), undefined);
      assert.equal(features.getChild("sm", SM), undefined);
      // Stanzas flow at once.
      const [pong] = await send(`<iq type="get" id="p1"><ping xmlns="urn:xmpp:ping"/></iq>`);
      assert.equal(pong?.attrs.type, "result");
    });

    it("gives the same client installation the same resource, taking its old session over", async () => {
      await send(authenticatePlain(userAgent() + bindRequest()));
      const first = conn;
      const second = await opened();
      const [success] = await send(authenticatePlain(userAgent() + bindRequest()), second);
      assert.equal(second.resource, first.resource);
      assert.equal(success?.getChildText("authorization-identifier"), `${ALICE}/${first.resource}`);
      assert.deepEqual(ctx.kicked, [{ connId: first.connId, condition: "conflict" }]);
      // Another installation gets another resource.
      const third = await opened();
      await send(authenticatePlain(userAgent("another-agent") + bindRequest()), third);
      assert.notEqual(third.resource, first.resource);
    });

    it("binds a bare <id> without a tag, from the connection without a user-agent", async () => {
      await send(authenticatePlain(`<bind xmlns="${BIND2}"/>`));
      assert.match(conn.resource ?? "", /^[0-9a-f]{12}$/);
      assert.equal(conn.sm, undefined);
      const other = await opened();
      await send(authenticatePlain(`<bind xmlns="${BIND2}"/>`), other);
      assert.notEqual(other.resource, conn.resource);
    });

    it("fails a bad tag with malformed-request and binds nothing", async () => {
      for (const [tag, text] of [
        ["x".repeat(65), "Bind 2 &lt;tag/&gt; exceeds 64 bytes"],
        ["a\u200bb", "Bind 2 &lt;tag/&gt; is not a valid resourcepart"],
        ["<b/>", "Bind 2 &lt;tag/&gt; holds text only"],
      ]) {
        conn = await opened();
        const out = await send(authenticatePlain(bindRequest(tag, "")));
        assertXmlList(out, [failure("malformed-request", text)], tag);
        assert.equal(conn.bareJid, undefined);
      }
      assert.deepEqual(await ctx.stores.routes.list(ALICE), []);
    });

    it("fails with temporary-auth-failure when the account has no resource left", async () => {
      ctx = new TestSessionContext({
        config: { tlsTerminatedByProxy: true, maxResourcesPerUser: 1 },
      });
      await ctx.stores.accounts.create(ALICE, createAccount(PASSWORD, 4096));
      await ctx.connect(`${ALICE}/pc`, { createAccount: false });
      conn = await opened();
      const out = await send(authenticatePlain(bindRequest()));
      assertXmlList(out, [failure("temporary-auth-failure", "too many resources are bound")]);
      assert.equal(conn.bareJid, undefined);
      assert.equal(conn.stage, "opened");
    });
  });

  describe("FAST", () => {
    it("issues a token on request and logs in with it, no password, responder as additional data", async () => {
      const token = await requestToken();
      assert.ok(token.length > 64, "longer than HMAC-SHA-256's block");
      const tokens = await ctx.stores.fastTokens.get(ALICE, AGENT);
      assert.equal(tokens.length, 1);
      assert.ok(!JSON.stringify(tokens).includes(token), "only a hash is stored");
      assert.equal(tokens[0]?.expiresAtMs, ctx.nowMs + ctx.config.fastTokenTtlMs);

      const out = await send(authenticateFast(token, `<fast xmlns="${FAST}"/>`));
      const success = out[0]!;
      assert.equal(success.name, "success", success.toString());
      assert.equal(success.getChildText("additional-data"), htResponder(token));
      assert.equal(success.getChildText("authorization-identifier"), ALICE);
      assert.equal(success.getChild("token", FAST), undefined, "no rotation for a young token");
      assert.equal(conn.bareJid, ALICE);
    });

    it("gives the token's expiry in XEP-0082 form", async () => {
      const c = await opened();
      const [success] = await send(
        authenticatePlain(`${userAgent()}<request-token xmlns="${FAST}" mechanism="${HT}"/>`),
        c,
      );
      assert.equal(
        success?.getChild("token", FAST)?.attrs.expiry,
        new Date(ctx.nowMs + ctx.config.fastTokenTtlMs).toISOString(),
      );
    });

    it("fails a wrong token, another installation's token and an unknown user with not-authorized", async () => {
      const token = await requestToken();
      assertXmlList(
        await send(authenticateFast(token.replace(/^./, (c) => (c === "A" ? "B" : "A")))),
        [failure("not-authorized")],
      );
      assertXmlList(await send(authenticateFast(token, `<fast xmlns="${FAST}"/>`, "other-agent")), [
        failure("not-authorized"),
      ]);
      assert.equal(conn.bareJid, undefined);
      const [success] = await send(authenticateFast(token));
      assert.equal(success?.name, "success");
    });

    it("refuses a replayed count (XEP-0484 §4.3)", async () => {
      const token = await requestToken();
      const [first] = await send(authenticateFast(token, `<fast xmlns="${FAST}" count="1"/>`));
      assert.equal(first?.name, "success");
      const replay = await opened();
      assertXmlList(
        await send(authenticateFast(token, `<fast xmlns="${FAST}" count="1"/>`), replay),
        [failure("not-authorized")],
      );
      const [next] = await send(
        authenticateFast(token, `<fast xmlns="${FAST}" count="2"/>`),
        replay,
      );
      assert.equal(next?.name, "success");
    });

    it("invalidates the token on request: it is refused afterwards", async () => {
      const token = await requestToken();
      const [success] = await send(
        authenticateFast(token, `<fast xmlns="${FAST}" invalidate="true"/>`),
      );
      assert.equal(success?.name, "success");
      assert.equal(success?.getChild("token", FAST), undefined);
      assertXmlList(await send(authenticateFast(token), await opened()), [
        failure("not-authorized"),
      ]);
    });

    it("rotates a token used past half its lifetime; the old one goes once the new one is used", async () => {
      const token = await requestToken();
      ctx.nowMs += ctx.config.fastTokenTtlMs / 2 + 1;
      const [success] = await send(authenticateFast(token));
      const rotated = success?.getChild("token", FAST)?.attrs.token;
      assert.ok(rotated && rotated !== token, "a new token");
      // Not received (say): the old token still works, and is rotated again; the unused token
      // issued before is replaced (XEP-0484 §4.5).
      const [again] = await send(authenticateFast(token), await opened());
      assert.equal(again?.name, "success", again?.toString());
      const latest = again?.getChild("token", FAST)?.attrs.token;
      assert.ok(latest && latest !== rotated, "another new token");
      assertXmlList(await send(authenticateFast(rotated), await opened()), [
        failure("not-authorized"),
      ]);
      const [withNew] = await send(authenticateFast(latest), await opened());
      assert.equal(withNew?.name, "success");
      assert.equal(withNew?.getChild("token", FAST), undefined, "a young token is not rotated");
      assertXmlList(await send(authenticateFast(token), await opened()), [
        failure("not-authorized"),
      ]);
    });

    it("refuses an expired token", async () => {
      const token = await requestToken();
      ctx.nowMs += ctx.config.fastTokenTtlMs;
      assertXmlList(await send(authenticateFast(token)), [failure("not-authorized")]);
    });

    it("binds a token login too, as any SASL2 login", async () => {
      const token = await requestToken();
      const out = await send(
        authenticateFast(
          token,
          `<fast xmlns="${FAST}"/><bind xmlns="${BIND2}"><tag>t</tag></bind>`,
        ),
      );
      assert.match(
        out[0]?.getChildText("authorization-identifier") ?? "",
        /^alice@example\.com\/t\//,
      );
      assert.equal(conn.stage, "bound");
    });

    it("fails FAST requests that cannot be honoured with malformed-request", async () => {
      for (const [request, text] of [
        [
          authenticatePlain(`<request-token xmlns="${FAST}" mechanism="${HT}"/>`),
          "FAST needs &lt;user-agent id/&gt;",
        ],
        [
          authenticatePlain(
            `${userAgent()}<request-token xmlns="${FAST}" mechanism="HT-SHA-512-NONE"/>`,
          ),
          "no FAST mechanism HT-SHA-512-NONE is offered",
        ],
        [
          `<authenticate xmlns="${SASL2}" mechanism="${HT}"><initial-response>AA==</initial-response>${userAgent()}</authenticate>`,
          `${HT} is used with &lt;fast/&gt;`,
        ],
        [
          authenticatePlain(`${userAgent()}<fast xmlns="${FAST}"/>`),
          "&lt;fast/&gt; goes with a FAST mechanism, not PLAIN",
        ],
        [
          authenticateFast("t", `<fast xmlns="${FAST}" count="0"/>`),
          "&lt;fast count/&gt; is a positive integer",
        ],
        [
          `<authenticate xmlns="${SASL2}" mechanism="${HT}"><initial-response>${b64("alice")}</initial-response>${userAgent()}<fast xmlns="${FAST}"/></authenticate>`,
          "HT message is authcid NUL 32-byte HMAC",
        ],
      ]) {
        conn = await opened();
        assertXmlList(await send(request), [failure("malformed-request", text)], request);
      }
    });

    it("is not offered on a connection not known to be secure", async () => {
      ctx = new TestSessionContext({ config: { plainRequiresTls: false } });
      await ctx.stores.accounts.create(ALICE, createAccount(PASSWORD, 4096));
      conn = await newConnState("edge-test.0.insecure", "edge-test", 0, 0);
      const features = (await send(`<open xmlns="${FRAMING}" to="example.com" version="1.0"/>`))[1];
      const inline = features?.getChild("authentication", SASL2)?.getChild("inline");
      assert.ok(inline?.getChild("bind", BIND2));
      assert.equal(inline?.getChild("fast", FAST), undefined);
      assertXmlList(await send(authenticateFast("t")), [failure("encryption-required")]);
    });
  });
});
