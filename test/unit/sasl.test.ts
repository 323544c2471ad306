// RFC 6120 §6 (SASL negotiation) with SCRAM-SHA-256 (RFC 7677), SCRAM-SHA-1 (RFC 5802) and PLAIN
// (RFC 4616), through the real session core (handleFrame) with memory stores. The SCRAM-SHA-256
// client is the independent one in test/helpers; SCRAM-SHA-1 is computed here with node:crypto.
import { strict as assert } from "node:assert";
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import type { Element } from "ltx";
import { newConnState, type ConnState } from "../../services/session/core/connection.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import { createAccount } from "../../services/session/core/sasl/sasl-credentials.js";
import { buildHandlerChain } from "../../services/session/session-service.js";
import { ScramSha256Mechanism } from "../helpers/sasl-scram-sha-256.js";
import { TestSessionContext, assertXmlList, input } from "../helpers/session-context.js";

const FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
const SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const ALICE = "alice@example.com";
const PASSWORD = "correct horse";
const ITERATIONS = 4096;

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
const unb64 = (text: string) => Buffer.from(text, "base64").toString("utf8");
const plain = (authcid: string, password: string, authzid = "") =>
  b64(`${authzid}\0${authcid}\0${password}`);
const failure = (condition: string, text?: string) =>
  `<failure xmlns="${SASL}"><${condition}/>${text === undefined ? "" : `<text>${text}</text>`}</failure>`;

/** RFC 5802 client side for SCRAM-SHA-1, written out step by step. */
class ScramSha1Client {
  readonly nonce = randomBytes(12).toString("base64");
  private serverSignature = Buffer.alloc(0);

  constructor(
    private readonly username: string,
    private readonly password: string,
  ) {}

  get clientFirstBare(): string {
    return `n=${this.username},r=${this.nonce}`;
  }

  first(): string {
    return `n,,${this.clientFirstBare}`;
  }

  final(serverFirst: string): string {
    const attrs = new Map(serverFirst.split(",").map((a) => [a.slice(0, 1), a.slice(2)]));
    const nonce = attrs.get("r") ?? "";
    assert.ok(nonce.startsWith(this.nonce), "the server nonce extends the client nonce");
    const salted = pbkdf2Sync(
      this.password,
      Buffer.from(attrs.get("s") ?? "", "base64"),
      Number(attrs.get("i")),
      20,
      "sha1",
    );
    const hmac = (key: Buffer, data: string) => createHmac("sha1", key).update(data).digest();
    const clientKey = hmac(salted, "Client Key");
    const storedKey = createHash("sha1").update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.from(clientKey.map((byte, i) => byte ^ (signature[i] ?? 0)));
    this.serverSignature = hmac(hmac(salted, "Server Key"), authMessage);
    return `${withoutProof},p=${proof.toString("base64")}`;
  }

  expectedServerFinal(): string {
    return `v=${this.serverSignature.toString("base64")}`;
  }
}

describe("SASL (RFC 6120 §6)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let conn: ConnState;

  async function opened(context: TestSessionContext): Promise<ConnState> {
    const c = newConnState(`edge-test.0.${randomBytes(4).toString("hex")}`, "edge-test", 0, 0);
    await input(context, chain, c, `<open xmlns="${FRAMING}" to="example.com" version="1.0"/>`);
    assert.equal(c.stage, "opened");
    context.clearOutput();
    return c;
  }

  async function send(xml: string): Promise<Element[]> {
    ctx.clearOutput();
    await input(ctx, chain, conn, xml);
    return ctx.received(conn);
  }

  function payloadOf(el: Element, name: string): string {
    assert.equal(el.name, name, `expected <${name}/>, got ${el.toString()}`);
    assert.equal(el.attrs.xmlns, SASL);
    return unb64(el.getText());
  }

  beforeEach(async () => {
    // PLAIN is offered only on a secure connection: these streams are, behind a TLS proxy.
    ctx = new TestSessionContext({ config: { tlsTerminatedByProxy: true } });
    chain = buildHandlerChain();
    await ctx.stores.accounts.create(ALICE, createAccount(PASSWORD, ITERATIONS));
    conn = await opened(ctx);
  });

  describe("PLAIN (RFC 4616)", () => {
    it("authenticates with the right password", async () => {
      assertXmlList(
        await send(`<auth xmlns="${SASL}" mechanism="PLAIN">${plain("alice", PASSWORD)}</auth>`),
        [`<success xmlns="${SASL}"/>`],
      );
      assert.equal(conn.stage, "authenticated");
      assert.equal(conn.bareJid, ALICE);
      assert.equal(conn.authFailures, 0);
    });

    it("normalizes the username to the account's localpart", async () => {
      await send(`<auth xmlns="${SASL}" mechanism="PLAIN">${plain("Alice", PASSWORD)}</auth>`);
      assert.equal(conn.bareJid, ALICE);
    });

    it("fails a wrong password with not-authorized and lets the client retry (§6.4.5)", async () => {
      assertXmlList(
        await send(`<auth xmlns="${SASL}" mechanism="PLAIN">${plain("alice", "wrong")}</auth>`),
        [failure("not-authorized")],
      );
      assert.equal(conn.stage, "opened");
      assert.equal(conn.bareJid, undefined);
      assert.equal(conn.authFailures, 1);
      assertXmlList(
        await send(`<auth xmlns="${SASL}" mechanism="PLAIN">${plain("alice", PASSWORD)}</auth>`),
        [`<success xmlns="${SASL}"/>`],
      );
      assert.deepEqual(ctx.closed, []);
    });

    it("fails an unknown user with not-authorized, like a wrong password", async () => {
      assertXmlList(
        await send(`<auth xmlns="${SASL}" mechanism="PLAIN">${plain("mallory", PASSWORD)}</auth>`),
        [failure("not-authorized")],
      );
      assert.equal(conn.stage, "opened");
    });

    it("accepts the user's own bare JID as authzid and refuses anyone else's", async () => {
      assertXmlList(
        await send(
          `<auth xmlns="${SASL}" mechanism="PLAIN">${plain("alice", PASSWORD, "bob@example.com")}</auth>`,
        ),
        [failure("invalid-authzid")],
      );
      assertXmlList(
        await send(
          `<auth xmlns="${SASL}" mechanism="PLAIN">${plain("alice", PASSWORD, ALICE)}</auth>`,
        ),
        [`<success xmlns="${SASL}"/>`],
      );
    });

    it("fails a message without a password with malformed-request", async () => {
      const [reply] = await send(
        `<auth xmlns="${SASL}" mechanism="PLAIN">${b64("\0alice")}</auth>`,
      );
      assert.equal(reply.name, "failure");
      assert.ok(reply.getChild("malformed-request"), reply.toString());
    });

    // RFC 6120 §6.5.3: the server has PLAIN but will not let the password cross an unprotected
    // stream; encryption-required says so (invalid-mechanism would claim it has no PLAIN).
    it("is refused with encryption-required on a connection not known to be secure", async () => {
      ctx = new TestSessionContext();
      await ctx.stores.accounts.create(ALICE, createAccount(PASSWORD, ITERATIONS));
      conn = await opened(ctx);
      for (const auth of [
        `<auth xmlns="${SASL}" mechanism="PLAIN">${plain("alice", PASSWORD)}</auth>`,
        `<auth xmlns="${SASL}" mechanism="PLAIN"/>`,
      ]) {
        assertXmlList(await send(auth), [failure("encryption-required")]);
        assert.equal(conn.stage, "opened");
        assert.equal(conn.bareJid, undefined);
      }
    });

    it("is refused with invalid-mechanism when config.allowPlain is false", async () => {
      ctx = new TestSessionContext({ config: { allowPlain: false, tlsTerminatedByProxy: true } });
      await ctx.stores.accounts.create(ALICE, createAccount(PASSWORD, ITERATIONS));
      conn = await opened(ctx);
      assertXmlList(
        await send(`<auth xmlns="${SASL}" mechanism="PLAIN">${plain("alice", PASSWORD)}</auth>`),
        [failure("invalid-mechanism")],
      );
      assert.equal(conn.stage, "opened");
    });

    // RFC 6120 §6.4.2 tells an absent initial response (no character data) from an empty one
    // ("="); RFC 4422 §5: when a client-first mechanism gets no initial response, the server
    // sends an empty challenge and the client's data arrives in <response/>.
    it("answers <auth/> without an initial response with an empty challenge", async () => {
      const [challenge] = await send(`<auth xmlns="${SASL}" mechanism="PLAIN"/>`);
      assert.equal(challenge?.name, "challenge", `got ${String(challenge)}`);
      assert.ok(["", "="].includes(challenge.getText().trim()), challenge.toString());
      assertXmlList(
        await send(`<response xmlns="${SASL}">${plain("alice", PASSWORD)}</response>`),
        [`<success xmlns="${SASL}"/>`],
      );
    });
  });

  describe("SCRAM-SHA-256 (RFC 7677)", () => {
    it("completes the exchange and proves the server knows the key", async () => {
      const client = new ScramSha256Mechanism();
      const cred = { username: "alice", password: PASSWORD };
      const first = Buffer.from(client.response(cred), "latin1").toString("base64");
      const [challenge] = await send(
        `<auth xmlns="${SASL}" mechanism="SCRAM-SHA-256">${first}</auth>`,
      );
      const serverFirst = payloadOf(challenge, "challenge");
      const account = await ctx.stores.accounts.get(ALICE);
      const salt = account?.scram["SCRAM-SHA-256"].salt as string;
      assert.match(serverFirst, /^r=[\x21-\x2b\x2d-\x7e]+,s=[A-Za-z0-9+/=]+,i=4096$/);
      assert.ok(serverFirst.includes(`,s=${salt},`));
      assert.equal(conn.stage, "opened");

      client.challenge(Buffer.from(serverFirst, "utf8").toString("latin1"));
      const final = Buffer.from(client.response(cred), "latin1").toString("base64");
      const [success] = await send(`<response xmlns="${SASL}">${final}</response>`);
      assert.ok(client.verifyServerFinal(payloadOf(success, "success")), "server signature");
      assert.equal(conn.stage, "authenticated");
      assert.equal(conn.bareJid, ALICE);
      assert.equal(conn.sasl, undefined);
    });

    /** Counts the account reads of the session's store from now on. */
    function countAccountReads(): { reads: number } {
      const counted = { reads: 0 };
      const accounts = ctx.stores.accounts;
      const get = accounts.get.bind(accounts);
      accounts.get = (bareJid) => {
        counted.reads++;
        return get(bareJid);
      };
      return counted;
    }

    /** Runs a whole exchange as alice; `between` runs after the challenge. */
    async function exchange(between: () => void = () => undefined): Promise<boolean> {
      const client = new ScramSha256Mechanism();
      const cred = { username: "alice", password: PASSWORD };
      const first = Buffer.from(client.response(cred), "latin1").toString("base64");
      const [challenge] = await send(
        `<auth xmlns="${SASL}" mechanism="SCRAM-SHA-256">${first}</auth>`,
      );
      client.challenge(Buffer.from(payloadOf(challenge, "challenge"), "utf8").toString("latin1"));
      between();
      const final = Buffer.from(client.response(cred), "latin1").toString("base64");
      const [success] = await send(`<response xmlns="${SASL}">${final}</response>`);
      return client.verifyServerFinal(payloadOf(success, "success"));
    }

    it("reads the account once per exchange: the last step uses what the first read", async () => {
      const counted = countAccountReads();
      assert.ok(await exchange(), "server signature");
      assert.equal(counted.reads, 1);
      assert.equal(conn.stage, "authenticated");
    });

    it("reads the account again when the exchange's state is a stored copy (another process)", async () => {
      const counted = countAccountReads();
      // A snapshot's copy, as a member that took the shard over restores it.
      const restored = () => (conn.sasl = JSON.parse(JSON.stringify(conn.sasl)));
      assert.ok(await exchange(restored), "server signature");
      assert.equal(counted.reads, 2);
      assert.equal(conn.stage, "authenticated");
    });

    it("fails a wrong password with not-authorized after the challenge", async () => {
      const client = new ScramSha256Mechanism();
      const cred = { username: "alice", password: "wrong" };
      const first = Buffer.from(client.response(cred), "latin1").toString("base64");
      const [challenge] = await send(
        `<auth xmlns="${SASL}" mechanism="SCRAM-SHA-256">${first}</auth>`,
      );
      client.challenge(Buffer.from(payloadOf(challenge, "challenge"), "utf8").toString("latin1"));
      const final = Buffer.from(client.response(cred), "latin1").toString("base64");
      assertXmlList(await send(`<response xmlns="${SASL}">${final}</response>`), [
        failure("not-authorized"),
      ]);
      assert.equal(conn.stage, "opened");
      assert.equal(conn.sasl, undefined);
      assert.equal(conn.authFailures, 1);
    });

    it("runs an unknown user through the same steps and fails with not-authorized", async () => {
      const client = new ScramSha256Mechanism();
      const cred = { username: "mallory", password: PASSWORD };
      const first = Buffer.from(client.response(cred), "latin1").toString("base64");
      const [challenge] = await send(
        `<auth xmlns="${SASL}" mechanism="SCRAM-SHA-256">${first}</auth>`,
      );
      const serverFirst = payloadOf(challenge, "challenge");
      // The stand-in shows the iteration count real accounts get (config.scramIterations).
      assert.match(serverFirst, new RegExp(`,i=${ctx.config.scramIterations}$`));
      client.challenge(Buffer.from(serverFirst, "utf8").toString("latin1"));
      const final = Buffer.from(client.response(cred), "latin1").toString("base64");
      assertXmlList(await send(`<response xmlns="${SASL}">${final}</response>`), [
        failure("not-authorized"),
      ]);
      assert.equal(conn.stage, "opened");
    });
  });

  // A real user's salt is stored once, so every spelling of the account shows it; a missing
  // user's stand-in must not tell itself apart by differing between spellings.
  describe("stand-ins for users that do not exist", () => {
    async function serverFirstFor(username: string, mechanism = "SCRAM-SHA-256"): Promise<string> {
      conn = await opened(ctx);
      const first = b64(`n,,n=${username},r=${randomBytes(6).toString("base64")}`);
      const [challenge] = await send(
        `<auth xmlns="${SASL}" mechanism="${mechanism}">${first}</auth>`,
      );
      return payloadOf(challenge, "challenge");
    }
    const saltAndIterations = (serverFirst: string) => serverFirst.split(",").slice(1).join(",");

    it("shows a missing user one salt however the username is spelled", async () => {
      const bob = saltAndIterations(await serverFirstFor("bob"));
      assert.match(bob, new RegExp(`^s=[A-Za-z0-9+/]{22}==,i=${ctx.config.scramIterations}$`));
      assert.equal(saltAndIterations(await serverFirstFor("BOB")), bob);
      assert.equal(saltAndIterations(await serverFirstFor("Bob")), bob);
      assert.notEqual(saltAndIterations(await serverFirstFor("bob", "SCRAM-SHA-1")), bob);
    });

    it("shows a real user its stored salt however the username is spelled", async () => {
      const stored = (await ctx.stores.accounts.get(ALICE))?.scram["SCRAM-SHA-256"];
      for (const username of ["alice", "ALICE", "Alice"])
        assert.equal(
          saltAndIterations(await serverFirstFor(username)),
          `s=${stored?.salt},i=${stored?.iterations}`,
        );
    });

    it("gives a username that is no valid localpart a stable salt, like a missing user", async () => {
      const invalid = saltAndIterations(await serverFirstFor("a/b"));
      assert.match(invalid, new RegExp(`,i=${ctx.config.scramIterations}$`));
      assert.equal(saltAndIterations(await serverFirstFor("a/b")), invalid);
    });

    it("derives the salts from the store's stand-in key, or from scramStandInKey when set", async () => {
      const fromStore = saltAndIterations(await serverFirstFor("bob"));
      ctx = new TestSessionContext({ config: { scramStandInKey: "shared secret" } });
      const configured = saltAndIterations(await serverFirstFor("bob"));
      assert.notEqual(configured, fromStore);
      ctx = new TestSessionContext({ config: { scramStandInKey: "shared secret" } });
      assert.equal(saltAndIterations(await serverFirstFor("bob")), configured);
    });
  });

  describe("SCRAM-SHA-1 (RFC 5802)", () => {
    it("completes the exchange and returns the server signature", async () => {
      const client = new ScramSha1Client("alice", PASSWORD);
      const [challenge] = await send(
        `<auth xmlns="${SASL}" mechanism="SCRAM-SHA-1">${b64(client.first())}</auth>`,
      );
      const serverFirst = payloadOf(challenge, "challenge");
      const account = await ctx.stores.accounts.get(ALICE);
      assert.ok(serverFirst.includes(`,s=${account?.scram["SCRAM-SHA-1"].salt},i=4096`));
      const [success] = await send(
        `<response xmlns="${SASL}">${b64(client.final(serverFirst))}</response>`,
      );
      assert.equal(payloadOf(success, "success"), client.expectedServerFinal());
      assert.equal(conn.stage, "authenticated");
      assert.equal(conn.bareJid, ALICE);
    });

    it("fails a wrong password with not-authorized", async () => {
      const client = new ScramSha1Client("alice", "wrong");
      const [challenge] = await send(
        `<auth xmlns="${SASL}" mechanism="SCRAM-SHA-1">${b64(client.first())}</auth>`,
      );
      const final = client.final(payloadOf(challenge, "challenge"));
      assertXmlList(await send(`<response xmlns="${SASL}">${b64(final)}</response>`), [
        failure("not-authorized"),
      ]);
    });

    it("fails a client-final whose nonce is not the exchange's with not-authorized", async () => {
      const client = new ScramSha1Client("alice", PASSWORD);
      const [challenge] = await send(
        `<auth xmlns="${SASL}" mechanism="SCRAM-SHA-1">${b64(client.first())}</auth>`,
      );
      const final = client.final(payloadOf(challenge, "challenge")).replace(",r=", ",r=x");
      assertXmlList(await send(`<response xmlns="${SASL}">${b64(final)}</response>`), [
        failure("not-authorized"),
      ]);
    });
  });

  describe("failures (§6.4.5, §6.5)", () => {
    it("refuses a mechanism it does not offer with invalid-mechanism", async () => {
      assertXmlList(await send(`<auth xmlns="${SASL}" mechanism="DIGEST-MD5">=</auth>`), [
        failure("invalid-mechanism"),
      ]);
      assertXmlList(await send(`<auth xmlns="${SASL}">=</auth>`), [failure("invalid-mechanism")]);
    });

    it("refuses data that is not base64 with incorrect-encoding", async () => {
      assertXmlList(await send(`<auth xmlns="${SASL}" mechanism="PLAIN">not base64!</auth>`), [
        failure("incorrect-encoding"),
      ]);
      assertXmlList(await send(`<auth xmlns="${SASL}" mechanism="SCRAM-SHA-1">abc</auth>`), [
        failure("incorrect-encoding"),
      ]);
      assert.equal(conn.authFailures, 2);
    });

    it("refuses an oversized SASL message with malformed-request before decoding it", async () => {
      const huge = Buffer.from(`n,,n=alice,r=${"x".repeat(8000)}`).toString("base64");
      assertXmlList(await send(`<auth xmlns="${SASL}" mechanism="SCRAM-SHA-256">${huge}</auth>`), [
        failure("malformed-request", "SASL message too long"),
      ]);
      assert.equal(conn.sasl, undefined);
    });

    it("answers <abort/> with aborted and forgets the exchange", async () => {
      const client = new ScramSha1Client("alice", PASSWORD);
      const [challenge] = await send(
        `<auth xmlns="${SASL}" mechanism="SCRAM-SHA-1">${b64(client.first())}</auth>`,
      );
      const final = client.final(payloadOf(challenge, "challenge"));
      assertXmlList(await send(`<abort xmlns="${SASL}"/>`), [failure("aborted")]);
      assert.equal(conn.sasl, undefined);
      assertXmlList(await send(`<response xmlns="${SASL}">${b64(final)}</response>`), [
        failure("malformed-request", "no exchange in progress"),
      ]);
      assert.equal(conn.stage, "opened");
    });

    it("refuses a <response/> without an exchange with malformed-request", async () => {
      assertXmlList(
        await send(`<response xmlns="${SASL}">${b64("c=biws,r=x,p=AAAA")}</response>`),
        [failure("malformed-request", "no exchange in progress")],
      );
    });

    it("refuses an unknown SASL element with malformed-request", async () => {
      assertXmlList(await send(`<success xmlns="${SASL}"/>`), [
        failure("malformed-request", "unexpected &lt;success/&gt;"),
      ]);
      assert.equal(conn.stage, "opened");
    });

    it("closes with policy-violation after maxAuthFailures failures", async () => {
      const wrong = `<auth xmlns="${SASL}" mechanism="PLAIN">${plain("alice", "wrong")}</auth>`;
      for (let i = 1; i < ctx.config.maxAuthFailures; i++) {
        assertXmlList(await send(wrong), [failure("not-authorized")]);
        assert.deepEqual(ctx.closed, [], `still open after ${i} failures`);
      }
      assertXmlList(await send(wrong), [failure("not-authorized")]);
      assert.deepEqual(
        ctx.closed.map((c) => [c.connId, c.condition]),
        [[conn.connId, "policy-violation"]],
      );
      assert.equal(conn.stage, "closed");
      // Nothing more is processed, not even the right password.
      assertXmlList(
        await send(`<auth xmlns="${SASL}" mechanism="PLAIN">${plain("alice", PASSWORD)}</auth>`),
        [],
      );
      assert.equal(conn.bareJid, undefined);
    });

    it("honours a configured maxAuthFailures of 1", async () => {
      ctx = new TestSessionContext({ config: { maxAuthFailures: 1 } });
      conn = await opened(ctx);
      await send(`<auth xmlns="${SASL}" mechanism="DIGEST-MD5">=</auth>`);
      assert.deepEqual(
        ctx.closed.map((c) => c.condition),
        ["policy-violation"],
      );
    });
  });

  describe("stream state", () => {
    it("refuses a stanza before authentication with a not-authorized stream error", async () => {
      await send(`<iq type="get" id="p1" to="example.com"><ping xmlns="urn:xmpp:ping"/></iq>`);
      assert.deepEqual(ctx.receivedXml(conn), []);
      assert.deepEqual(
        ctx.closed.map((c) => [c.connId, c.condition]),
        [[conn.connId, "not-authorized"]],
      );
    });

    it("refuses <auth/> before <open/> with a not-authorized stream error", async () => {
      const fresh = newConnState("edge-test.0.fresh", "edge-test", 0, 0);
      await input(
        ctx,
        chain,
        fresh,
        `<auth xmlns="${SASL}" mechanism="PLAIN">${plain("alice", PASSWORD)}</auth>`,
      );
      assert.equal(fresh.bareJid, undefined);
      assert.deepEqual(
        ctx.closed.map((c) => c.condition),
        ["not-authorized"],
      );
    });

    it("refuses stanzas after success until the stream is restarted", async () => {
      await send(`<auth xmlns="${SASL}" mechanism="PLAIN">${plain("alice", PASSWORD)}</auth>`);
      await send(`<iq type="set" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>`);
      assert.deepEqual(
        ctx.closed.map((c) => c.condition),
        ["not-authorized"],
      );
    });
  });
});
