import { strict as assert } from "node:assert";
import { createRequire } from "node:module";
import { parseFrame } from "../../services/session/core/frame-parser.js";
import { SaslFailure, type SaslCondition } from "../../services/session/core/sasl/sasl-failure.js";
import {
  parsePlain,
  plainDerivations,
  plainVerify,
  type PlainOptions,
} from "../../services/session/core/sasl/plain.js";
import {
  createAccount,
  deriveCredential,
  type AccountLookup,
  type StandIn,
} from "../../services/session/core/sasl/sasl-credentials.js";
import {
  scramFinish,
  scramStart,
  scramUsername,
  type ScramServerState,
  type ScramStartOptions,
} from "../../services/session/core/sasl/scram.js";
import {
  ScramSha256Mechanism,
  preferMechanism,
  type SaslFactoryLike,
} from "../helpers/sasl-scram-sha-256.js";

function fails(fn: () => unknown, condition: SaslCondition): void {
  assert.throws(fn, (err: unknown) => err instanceof SaslFailure && err.condition === condition);
}

// RFC 7677 §3.
const SHA256_VECTOR = {
  salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  serverFirst:
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal:
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

// RFC 5802 §5.
const SHA1_VECTOR = {
  salt: "QSXCR+Q6sek8bf92",
  clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
  serverNonce: "3rfcNHYJY1ZVvWVs7j",
  serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
  clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
  serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

/** An unknown user is shown a salt from this key and the iteration count real accounts get. */
const STAND_IN: StandIn = { saltKey: Buffer.alloc(32, 7), iterations: 10000 };
const OPTIONS: ScramStartOptions = { domain: "example.com", standIn: STAND_IN };

const sha256Credential = deriveCredential(
  "SCRAM-SHA-256",
  "pencil",
  4096,
  Buffer.from(SHA256_VECTOR.salt, "base64"),
);

/** The s= attribute of a server-first-message. */
function saltOf(serverFirst: string): string {
  return /,s=([^,]+),/.exec(serverFirst)?.[1] ?? "";
}

function startVector(): ScramServerState {
  return scramStart("SCRAM-SHA-256", SHA256_VECTOR.clientFirst, sha256Credential, {
    ...OPTIONS,
    serverNonce: SHA256_VECTOR.serverNonce,
  }).state;
}

describe("SCRAM server (RFC 5802, RFC 7677)", () => {
  it("reproduces the RFC 7677 SCRAM-SHA-256 exchange", () => {
    const { state, serverFirst } = scramStart(
      "SCRAM-SHA-256",
      SHA256_VECTOR.clientFirst,
      sha256Credential,
      { ...OPTIONS, serverNonce: SHA256_VECTOR.serverNonce },
    );
    assert.equal(serverFirst, SHA256_VECTOR.serverFirst);
    assert.equal(state.username, "user");
    const stored = JSON.parse(JSON.stringify(state)) as ScramServerState;
    const result = scramFinish(stored, sha256Credential, SHA256_VECTOR.clientFinal);
    assert.equal(result.serverFinal, SHA256_VECTOR.serverFinal);
    assert.equal(result.username, "user");
    assert.equal(result.state.stage, "complete");
  });

  it("reproduces the RFC 5802 SCRAM-SHA-1 exchange", () => {
    const credential = deriveCredential(
      "SCRAM-SHA-1",
      "pencil",
      4096,
      Buffer.from(SHA1_VECTOR.salt, "base64"),
    );
    const { state, serverFirst } = scramStart("SCRAM-SHA-1", SHA1_VECTOR.clientFirst, credential, {
      ...OPTIONS,
      serverNonce: SHA1_VECTOR.serverNonce,
    });
    assert.equal(serverFirst, SHA1_VECTOR.serverFirst);
    assert.equal(
      scramFinish(state, credential, SHA1_VECTOR.clientFinal).serverFinal,
      SHA1_VECTOR.serverFinal,
    );
  });

  it("refuses the right proof for a wrong password with not-authorized", () => {
    const other = deriveCredential(
      "SCRAM-SHA-256",
      "pencil2",
      4096,
      Buffer.from(SHA256_VECTOR.salt, "base64"),
    );
    const { state } = scramStart("SCRAM-SHA-256", SHA256_VECTOR.clientFirst, other, {
      ...OPTIONS,
      serverNonce: SHA256_VECTOR.serverNonce,
    });
    fails(() => scramFinish(state, other, SHA256_VECTOR.clientFinal), "not-authorized");
  });

  it("refuses a tampered proof, nonce or channel binding with not-authorized", () => {
    const state = startVector();
    const tamperedProof = SHA256_VECTOR.clientFinal.replace("p=dHzb", "p=dHzc");
    fails(() => scramFinish(state, sha256Credential, tamperedProof), "not-authorized");
    const otherNonce = SHA256_VECTOR.clientFinal.replace("k0,", "k1,");
    fails(() => scramFinish(state, sha256Credential, otherNonce), "not-authorized");
    const otherBinding = SHA256_VECTOR.clientFinal.replace("c=biws", "c=eSws");
    fails(() => scramFinish(state, sha256Credential, otherBinding), "not-authorized");
  });

  it("walks an unknown user through a normal-looking exchange, then says not-authorized", () => {
    const first = scramStart("SCRAM-SHA-256", "n,,n=nobody,r=abc", undefined, {
      ...OPTIONS,
      serverNonce: "xyz",
    });
    // The stand-in shows the iteration count real accounts get.
    assert.match(first.serverFirst, /^r=abcxyz,s=[A-Za-z0-9+/]{22}==,i=10000$/);
    const again = scramStart("SCRAM-SHA-256", "n,,n=nobody,r=def", undefined, OPTIONS);
    assert.equal(saltOf(again.serverFirst), saltOf(first.serverFirst), "stable salt");
    const someoneElse = scramStart("SCRAM-SHA-256", "n,,n=somebody,r=abc", undefined, OPTIONS);
    assert.notEqual(saltOf(someoneElse.serverFirst), saltOf(first.serverFirst));

    const client = new ScramSha256Mechanism({ nonce: "abc" });
    client.response({ username: "nobody", password: "guess" });
    client.challenge(first.serverFirst);
    const clientFinal = client.response({ username: "nobody", password: "guess" });
    fails(() => scramFinish(first.state, undefined, clientFinal), "not-authorized");
  });

  // A real user's salt is stored, so every spelling that names the account shows the same one;
  // a missing user's must behave alike, or comparing n=bob with n=BOB tells who exists.
  it("shows one stand-in salt for every spelling of a missing user's JID", () => {
    const salt = (username: string, options = OPTIONS) =>
      saltOf(scramStart("SCRAM-SHA-256", `n,,n=${username},r=abc`, undefined, options).serverFirst);
    assert.equal(salt("BOB"), salt("bob"));
    assert.equal(salt("Bob"), salt("bob"));
    // The mechanism, the key and the domain each give another salt.
    const sha1 = scramStart("SCRAM-SHA-1", "n,,n=bob,r=abc", undefined, OPTIONS).serverFirst;
    assert.notEqual(saltOf(sha1), salt("bob"));
    const otherKey = { ...OPTIONS, standIn: { ...STAND_IN, saltKey: Buffer.alloc(32, 8) } };
    assert.notEqual(salt("bob", otherKey), salt("bob"));
    assert.notEqual(salt("bob", { ...OPTIONS, domain: "example.org" }), salt("bob"));
  });

  it("gives a username that is no valid localpart a stable stand-in salt of its own", () => {
    const salt = (username: string) =>
      saltOf(scramStart("SCRAM-SHA-256", `n,,n=${username},r=abc`, undefined, OPTIONS).serverFirst);
    assert.equal(salt("a/b"), salt("a/b"));
    assert.notEqual(salt("a/b"), salt("A/B"));
    assert.notEqual(salt("a/b"), salt("ab"));
    const { serverFirst } = scramStart("SCRAM-SHA-1", "n,,n=a/b,r=abc", undefined, OPTIONS);
    assert.match(serverFirst, /,i=10000$/);
  });

  it("decodes =2C and =3D in the username and accepts the 'y' flag", () => {
    assert.equal(scramUsername("n,,n=a=2Cb=3Dc,r=abc"), "a,b=c");
    assert.equal(scramUsername("y,,n=user,r=abc,x=ext"), "user");
  });

  it("refuses malformed client-first messages with malformed-request", () => {
    for (const message of [
      "",
      "n=user,r=abc",
      "x,,n=user,r=abc",
      "p=tls-unique,,n=user,r=abc",
      "n,,n=us=41er,r=abc",
      "n,,n=user=,r=abc",
      "n,,n=,r=abc",
      "n,,r=abc",
      "n,,n=user",
      "n,,n=user,r=",
      "n,,n=user,r=a\u00e9",
      "n,,m=ext,n=user,r=abc",
      "n,,n=user,r=abc,junk",
      "n,a=,n=user,r=abc",
    ]) {
      fails(
        () => scramStart("SCRAM-SHA-256", message, sha256Credential, OPTIONS),
        "malformed-request",
      );
    }
  });

  it("refuses malformed client-final messages with malformed-request", () => {
    const state = startVector();
    const nonce = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    for (const message of [
      "",
      `c=biws,${nonce}`,
      `${nonce},c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`,
      `c=biws,${nonce},p=not*base64`,
      `c=biws,${nonce},p=AAAA`,
      `c=biws,${nonce},junk,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`,
    ]) {
      fails(() => scramFinish(state, sha256Credential, message), "malformed-request");
    }
    const done = scramFinish(state, sha256Credential, SHA256_VECTOR.clientFinal).state;
    fails(
      () => scramFinish(done, sha256Credential, SHA256_VECTOR.clientFinal),
      "malformed-request",
    );
  });

  it("honours an authzid naming the user's own bare JID and refuses others", () => {
    const options = OPTIONS;
    const ok = scramStart("SCRAM-SHA-256", "n,a=User@Example.com,n=user,r=abc", undefined, options);
    assert.equal(ok.state.authzid, "User@Example.com");
    for (const authzid of ["admin@example.com", "user@example.org", "user@example.com/r", "@"]) {
      const message = `n,a=${authzid},n=user,r=abc`;
      fails(() => scramStart("SCRAM-SHA-256", message, undefined, options), "invalid-authzid");
    }
    fails(
      () =>
        scramStart("SCRAM-SHA-256", "n,a=user@example.com,n=user,r=abc", undefined, {
          ...OPTIONS,
          domain: "example.org",
        }),
      "invalid-authzid",
    );
  });

  it("creates accounts with a separate random salt per mechanism", () => {
    const account = createAccount("secret", 1024);
    const sha1 = account.scram["SCRAM-SHA-1"];
    const sha256 = account.scram["SCRAM-SHA-256"];
    assert.equal(Buffer.from(sha1.salt, "base64").length, 16);
    assert.notEqual(sha1.salt, sha256.salt);
    assert.equal(sha256.iterations, 1024);
    assert.equal(Buffer.from(sha256.storedKey, "base64").length, 32);
    assert.equal(Buffer.from(sha1.serverKey, "base64").length, 20);
    assert.throws(() => deriveCredential("SCRAM-SHA-256", "x", 0), RangeError);
  });

  it("applies NFKC to passwords as a SASLprep stand-in", () => {
    const salt = Buffer.alloc(16, 1);
    const composed = deriveCredential("SCRAM-SHA-256", "\u2168", 1, salt);
    assert.deepEqual(composed, deriveCredential("SCRAM-SHA-256", "IX", 1, salt));
  });
});

describe("PLAIN (RFC 4616)", () => {
  const account = createAccount("r0m30myr0m30", 4096);
  const lookup = async (username: string): Promise<AccountLookup> => ({
    account: username === "juliet" ? account : undefined,
    standIn: STAND_IN,
  });
  const options: PlainOptions = { lookup, domain: "example.com", queueMaxLogins: 1024 };

  it("accepts the right password", async () => {
    assert.equal(await plainVerify("\0juliet\0r0m30myr0m30", options), "juliet");
    const bytes = Buffer.from("\0juliet\0r0m30myr0m30", "utf8");
    assert.equal(await plainVerify(bytes, options), "juliet");
  });

  it("refuses a wrong password or unknown user with not-authorized", async () => {
    for (const message of ["\0juliet\0wrong", "\0romeo\0r0m30myr0m30"]) {
      await assert.rejects(
        plainVerify(message, options),
        (err: unknown) => err instanceof SaslFailure && err.condition === "not-authorized",
      );
    }
  });

  it("queues derivations past the thread pool's size instead of refusing them", async () => {
    const many = plainDerivations.concurrency * 3;
    const attempts = Array.from({ length: many }, () =>
      plainVerify("\0juliet\0r0m30myr0m30", { ...options, queueMaxLogins: many }),
    );
    assert.deepEqual(await Promise.all(attempts), Array(many).fill("juliet"));
    assert.equal(plainDerivations.active, 0);
  });

  it("answers temporary-auth-failure only past queueMaxLogins waiting logins", async () => {
    const slots = plainDerivations.concurrency;
    const attempts = Array.from({ length: slots + 3 }, () =>
      plainVerify("\0juliet\0r0m30myr0m30", { ...options, queueMaxLogins: 1 }).then(
        () => "ok",
        (err: unknown) => (err instanceof SaslFailure ? err.condition : String(err)),
      ),
    );
    const outcomes = await Promise.all(attempts);
    assert.equal(outcomes.filter((o) => o === "ok").length, slots + 1);
    assert.equal(outcomes.filter((o) => o === "temporary-auth-failure").length, 2);
    // Once they are done, logins go through again.
    assert.equal(await plainVerify("\0juliet\0r0m30myr0m30", options), "juliet");
  });

  it("accepts an authzid equal to the user's bare JID and refuses others", async () => {
    const own = "juliet@example.com\0juliet\0r0m30myr0m30";
    assert.equal(await plainVerify(own, options), "juliet");
    const invalidAuthzid = (err: unknown) =>
      err instanceof SaslFailure && err.condition === "invalid-authzid";
    await assert.rejects(
      plainVerify("romeo@example.com\0juliet\0r0m30myr0m30", options),
      invalidAuthzid,
    );
    await assert.rejects(plainVerify(own, { ...options, domain: "example.org" }), invalidAuthzid);
  });

  it("refuses malformed messages with malformed-request", () => {
    for (const message of [
      "",
      "juliet\0r0m30myr0m30",
      "\0\0password",
      "\0juliet\0",
      "\0juliet\0pass\0extra",
      `\0juliet\0${"p".repeat(256)}`,
    ]) {
      fails(() => parsePlain(message), "malformed-request");
    }
    fails(() => parsePlain(Uint8Array.from([0, 0x6a, 0, 0xff])), "malformed-request");
  });
});

class FakeScramSha1 {
  get name(): string {
    return "SCRAM-SHA-1";
  }
}

class FakePlain {
  get name(): string {
    return "PLAIN";
  }
}

describe("SCRAM-SHA-256 test client helper", () => {
  // @xmpp/sasl carries mechanism messages through btoa/atob, so this does the same.
  const wire = (binary: string): string => Buffer.from(btoa(binary), "base64").toString("utf8");
  const back = (text: string): string => atob(Buffer.from(text, "utf8").toString("base64"));

  it("interoperates with the server functions, including a non-ASCII username", () => {
    const password = "correct horse";
    const account = createAccount(password, 4096);
    const credential = account.scram["SCRAM-SHA-256"];
    const client = new ScramSha256Mechanism();
    const cred = { username: "j\u00falia,=x", password };

    const clientFirst = wire(client.response(cred));
    assert.equal(scramUsername(clientFirst), "j\u00falia,=x");
    const { state, serverFirst } = scramStart("SCRAM-SHA-256", clientFirst, credential, OPTIONS);
    client.challenge(back(serverFirst));
    const { serverFinal } = scramFinish(state, credential, wire(client.response(cred)));
    assert.equal(client.verifyServerFinal(serverFinal), true);
    assert.equal(client.verifyServerFinal("v=AAAA"), false);
  });

  it("reproduces the RFC 7677 client messages", () => {
    const client = new ScramSha256Mechanism({ nonce: "rOprNGfwEbeRWgbNEkqO" });
    const cred = { username: "user", password: "pencil" };
    assert.equal(client.response(cred), SHA256_VECTOR.clientFirst);
    client.challenge(SHA256_VECTOR.serverFirst);
    assert.equal(client.response(cred), SHA256_VECTOR.clientFinal);
    client.challenge(SHA256_VECTOR.serverFinal);
    assert.equal(client.response(cred), "");
  });

  it("preferMechanism pins @xmpp/client's choice to one mechanism", async () => {
    const require = createRequire(import.meta.url);
    const Factory = require("saslmechanisms") as new () => SaslFactoryLike & {
      create(offered: string[]): unknown;
    };
    // Loaded by name at run time: these packages ship no TypeScript declarations.
    const saslModule = "@xmpp/sasl";
    const onAuthModule = "@xmpp/client/lib/createOnAuthenticate.js";
    const { getAvailableMechanisms } = (await import(saslModule)) as {
      getAvailableMechanisms(features: unknown, ns: string, factory: unknown): string[];
    };
    const { getMechanism } = (await import(onAuthModule)) as {
      getMechanism(args: { mechanisms: string[]; entity: unknown; credentials: unknown }): string;
    };

    const ns = "urn:ietf:params:xml:ns:xmpp-sasl";
    const features = parseFrame(
      `<mechanisms xmlns="${ns}"><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism>` +
        `<mechanism>SCRAM-SHA-256</mechanism></mechanisms>`,
      4096,
    );
    const choose = (name: string): string => {
      // What @xmpp/client registers, in its order.
      const factory = new Factory();
      factory.use(FakeScramSha1);
      factory.use(FakePlain);
      preferMechanism({ saslFactory: factory }, name);
      const mechanisms = getAvailableMechanisms(features, ns, factory);
      const entity = { isSecure: () => true };
      const chosen = getMechanism({ mechanisms, entity, credentials: { username: "u" } });
      assert.ok(
        name !== "SCRAM-SHA-256" || factory.create([chosen]) instanceof ScramSha256Mechanism,
      );
      return chosen;
    };
    assert.equal(choose("SCRAM-SHA-256"), "SCRAM-SHA-256");
    assert.equal(choose("SCRAM-SHA-1"), "SCRAM-SHA-1");
    assert.equal(choose("PLAIN"), "PLAIN");
    assert.throws(() => choose("DIGEST-MD5"), /not registered/);
  });
});
