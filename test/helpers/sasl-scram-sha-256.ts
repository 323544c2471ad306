// RFC 7677 / RFC 5802 §3 and §7: the client side of SCRAM-SHA-256, shaped for the `saslmechanisms`
// factory that @xmpp/client 0.14 uses (it ships SCRAM-SHA-1 only). Written independently of the
// server code in services/session/core/sasl/scram.ts so the tests check one against the other.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

/** What @xmpp/sasl passes to `response()`; only these fields matter here. */
export interface SaslCredentials {
  username?: string | null;
  password?: string | null;
  authzid?: string | null;
}

export interface ScramSha256Options {
  /** Client nonce; random when omitted. Tests inject the RFC 7677 vector's value. */
  nonce?: string;
  /**
   * RFC 5802 §6 gs2-cbind-flag: "n" (the default), "y", or "p=<type>" for SCRAM-SHA-256-PLUS,
   * which then proves `cbData`, the channel-binding data of the client's side of the TLS.
   */
  cbindFlag?: string;
  cbData?: Uint8Array;
}

const MECHANISM = "SCRAM-SHA-256";

// @xmpp/base64 uses btoa/atob, so the mechanism talks in "binary strings" (one char per byte).
function toBinary(text: string): string {
  return Buffer.from(text, "utf8").toString("latin1");
}

function fromBinary(binary: string): string {
  return Buffer.from(binary, "latin1").toString("utf8");
}

/** RFC 5802 §7 saslname escaping. */
function saslName(name: string): string {
  return name.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

function hmac(key: Uint8Array, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

function attributes(message: string): Map<string, string> {
  return new Map(message.split(",").map((attr) => [attr.slice(0, 1), attr.slice(2)]));
}

/**
 * A `saslmechanisms` mechanism: constructed with no arguments by the factory, identified by
 * `prototype.name`, driven through `response()` and `challenge()`.
 */
export class ScramSha256Mechanism {
  get name(): string {
    return MECHANISM;
  }

  /** The client speaks first (RFC 6120 §6.4.2 initial response). */
  get clientFirst(): boolean {
    return true;
  }

  private stage: "initial" | "challenge" | "final" = "initial";
  private readonly clientNonce: string;
  private readonly cbindFlag: string;
  private readonly cbData: Uint8Array;
  private gs2Header = "";
  private clientFirstBare = "";
  private lastChallenge = "";
  private serverSignature: Buffer | undefined;

  constructor(options: ScramSha256Options = {}) {
    this.clientNonce = options.nonce ?? randomBytes(18).toString("base64");
    this.cbindFlag = options.cbindFlag ?? "n";
    this.cbData = options.cbData ?? Buffer.alloc(0);
  }

  /** Remembers the server's message for the next `response()`; @xmpp/sasl awaits this. */
  challenge(chal: string): this {
    this.lastChallenge = fromBinary(chal);
    return this;
  }

  /** The next client message as a binary string, following the stage. */
  response(cred: SaslCredentials): string {
    switch (this.stage) {
      case "initial":
        this.stage = "challenge";
        return toBinary(this.firstMessage(cred));
      case "challenge":
        this.stage = "final";
        return toBinary(this.finalMessage(cred));
      case "final":
        // Some servers send server-final as a challenge instead of in <success/>.
        if (!this.verifyServerFinal(this.lastChallenge)) {
          throw new Error("SCRAM-SHA-256: server signature mismatch");
        }
        return "";
    }
  }

  /**
   * Checks server-final (`v=`), proving the server knew the password's ServerKey. @xmpp/sasl drops
   * <success/> data, so callers that care check it themselves.
   */
  verifyServerFinal(serverFinal: string): boolean {
    const v = attributes(serverFinal).get("v");
    if (v === undefined || this.serverSignature === undefined) return false;
    const offered = Buffer.from(v, "base64");
    return (
      offered.length === this.serverSignature.length &&
      timingSafeEqual(offered, this.serverSignature)
    );
  }

  private firstMessage(cred: SaslCredentials): string {
    this.gs2Header = `${this.cbindFlag},${cred.authzid ? `a=${saslName(cred.authzid)}` : ""},`;
    this.clientFirstBare = `n=${saslName(cred.username ?? "")},r=${this.clientNonce}`;
    return this.gs2Header + this.clientFirstBare;
  }

  private finalMessage(cred: SaslCredentials): string {
    const serverFirst = this.lastChallenge;
    const attrs = attributes(serverFirst);
    const nonce = attrs.get("r") ?? "";
    const salt = Buffer.from(attrs.get("s") ?? "", "base64");
    const iterations = Number(attrs.get("i"));
    if (!nonce.startsWith(this.clientNonce) || !Number.isSafeInteger(iterations)) {
      throw new Error("SCRAM-SHA-256: malformed server-first-message");
    }
    const salted = pbkdf2Sync(cred.password ?? "", salt, iterations, 32, "sha256");
    const clientKey = hmac(salted, "Client Key");
    const storedKey = createHash("sha256").update(clientKey).digest();
    // RFC 5802 §7: cbind-input = gs2-header, then the channel-binding data under "p=".
    const cbindInput = Buffer.concat([Buffer.from(this.gs2Header, "utf8"), this.cbData]);
    const withoutProof = `c=${cbindInput.toString("base64")},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.from(clientKey.map((byte, i) => byte ^ (clientSignature[i] ?? 0)));
    this.serverSignature = hmac(hmac(salted, "Server Key"), authMessage);
    return `${withoutProof},p=${proof.toString("base64")}`;
  }
}

/** A mechanism class as the `saslmechanisms` factory stores it. */
export interface SaslMechanismClass {
  new (): unknown;
  prototype: { name: string };
}

/** The parts of `saslmechanisms`' Factory that selection depends on. */
export interface SaslFactoryLike {
  _mechs: { name: string; mech: SaslMechanismClass }[];
  use(mech: SaslMechanismClass): unknown;
}

export interface SaslClientLike {
  saslFactory: SaslFactoryLike;
}

/**
 * Makes an @xmpp/client use exactly `name`. @xmpp/sasl offers the server's mechanisms filtered
 * through `saslFactory._mechs` in its order, and the client takes the first (or, on a connection
 * it does not consider secure, the first that is not PLAIN), so leaving one entry pins the choice;
 * both SASL and SASL2 read the same factory. SCRAM-SHA-256 is registered first if missing.
 * Authentication then fails with "No compatible mechanism" if the server does not offer `name`.
 */
export function preferMechanism(client: SaslClientLike, name: string): void {
  const factory = client.saslFactory;
  if (name === MECHANISM && !factory._mechs.some((entry) => entry.name === name)) {
    factory.use(ScramSha256Mechanism);
  }
  const entry = factory._mechs.find((candidate) => candidate.name === name);
  if (!entry) throw new Error(`SASL mechanism ${name} is not registered with the client`);
  factory._mechs.splice(0, factory._mechs.length, entry);
}
