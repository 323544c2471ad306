// RFC 5802 §3 and §5, RFC 7677: the client side of SCRAM-SHA-256, for `megaphone probe login`.
// The server side is services/session/core/sasl/scram.ts; both use the same primitives
// (sasl-credentials.ts), and the probe's test logs in against the real server.
import { pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { DIGESTS, hash, hmac, prepPassword } from "../../session/core/sasl/sasl-credentials.js";

const MECHANISM = "SCRAM-SHA-256";

/** RFC 5802 §7 saslname escaping. */
function saslName(name: string): string {
  return name.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

function attributes(message: string): Map<string, string> {
  return new Map(message.split(",").map((attr) => [attr.slice(0, 1), attr.slice(2)]));
}

/** One SCRAM-SHA-256 exchange: first(), then final(serverFirst), then verify(serverFinal). */
export class ScramSha256Client {
  readonly mechanism = MECHANISM;
  private readonly gs2Header = "n,,";
  private readonly clientFirstBare: string;
  private readonly clientNonce: string;
  private serverSignature: Buffer | undefined;

  constructor(
    username: string,
    private readonly password: string,
    nonce = randomBytes(18).toString("base64"),
  ) {
    this.clientNonce = nonce;
    this.clientFirstBare = `n=${saslName(username)},r=${nonce}`;
  }

  /** client-first-message. */
  first(): string {
    return this.gs2Header + this.clientFirstBare;
  }

  /** client-final-message for the server's server-first-message; throws if it is malformed. */
  final(serverFirst: string): string {
    const attrs = attributes(serverFirst);
    const nonce = attrs.get("r") ?? "";
    const salt = Buffer.from(attrs.get("s") ?? "", "base64");
    const iterations = Number(attrs.get("i"));
    if (!nonce.startsWith(this.clientNonce) || nonce === this.clientNonce)
      throw new Error("SCRAM: the server's nonce does not extend ours");
    if (!Number.isSafeInteger(iterations) || iterations < 1 || salt.length === 0)
      throw new Error("SCRAM: malformed server-first-message");
    const { algorithm, bytes } = DIGESTS[MECHANISM];
    const salted = pbkdf2Sync(prepPassword(this.password), salt, iterations, bytes, algorithm);
    const clientKey = hmac(MECHANISM, salted, "Client Key");
    const storedKey = hash(MECHANISM, clientKey);
    const withoutProof = `c=${Buffer.from(this.gs2Header).toString("base64")},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = hmac(MECHANISM, storedKey, authMessage);
    const proof = Buffer.from(clientKey.map((b, i) => b ^ (clientSignature[i] ?? 0)));
    this.serverSignature = hmac(MECHANISM, hmac(MECHANISM, salted, "Server Key"), authMessage);
    return `${withoutProof},p=${proof.toString("base64")}`;
  }

  /** Whether server-final-message proves the server knew the password (RFC 5802 §5.1 `v`). */
  verify(serverFinal: string): boolean {
    const v = attributes(serverFinal).get("v");
    if (v === undefined || this.serverSignature === undefined) return false;
    const offered = Buffer.from(v, "base64");
    return (
      offered.length === this.serverSignature.length &&
      timingSafeEqual(offered, this.serverSignature)
    );
  }
}
