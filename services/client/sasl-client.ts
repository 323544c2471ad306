// The client side of SASL PLAIN and SCRAM-SHA-256 (RFC 4616, RFC 5802/7677), and of the
// HT-SHA-256-NONE token mechanism FAST uses (XEP-0484, draft-schmaus-kitten-sasl-ht), for the
// bench's clients: enough to log in and to check the server's signature, nothing else.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

export type ClientMechanism = "PLAIN" | "SCRAM-SHA-256";

export interface SaslExchange {
  /** The initial response (base64) sent in <auth/>. */
  initial(): string;
  /** The response to a challenge (base64 in, base64 out). */
  respond(challenge: string): string;
  /** Checks <success/>'s additional data; throws if the server did not prove it knows the key. */
  verify(success: string): void;
}

export function saslExchange(
  mechanism: ClientMechanism,
  username: string,
  password: string,
  /** Derived SCRAM keys by salt and iterations: a bench user logs in many times. */
  saltedCache?: Map<string, Buffer>,
): SaslExchange {
  if (mechanism === "PLAIN") {
    return {
      initial: () => Buffer.from(`\0${username}\0${password}`, "utf8").toString("base64"),
      respond: () => {
        throw new Error("PLAIN has no challenge");
      },
      verify: () => undefined,
    };
  }
  return new ScramSha256(username, password, saltedCache);
}

const hmac = (key: Uint8Array, data: string) => createHmac("sha256", key).update(data).digest();

class ScramSha256 implements SaslExchange {
  private readonly nonce = randomBytes(18).toString("base64");
  private readonly clientFirstBare: string;
  private serverSignature: Buffer | undefined;

  constructor(
    username: string,
    private readonly password: string,
    private readonly saltedCache?: Map<string, Buffer>,
  ) {
    const name = username.replace(/=/g, "=3D").replace(/,/g, "=2C");
    this.clientFirstBare = `n=${name},r=${this.nonce}`;
  }

  initial(): string {
    return Buffer.from(`n,,${this.clientFirstBare}`, "utf8").toString("base64");
  }

  respond(challenge: string): string {
    const serverFirst = Buffer.from(challenge, "base64").toString("utf8");
    const attrs = new Map(serverFirst.split(",").map((a) => [a[0], a.slice(2)]));
    const nonce = attrs.get("r") ?? "";
    const salt = attrs.get("s") ?? "";
    const iterations = Number(attrs.get("i"));
    if (!nonce.startsWith(this.nonce) || !salt || !(iterations > 0))
      throw new Error(`bad SCRAM server-first-message: ${serverFirst}`);
    const cacheKey = `${this.password}\0${salt}:${iterations}`;
    let salted = this.saltedCache?.get(cacheKey);
    if (!salted) {
      salted = pbkdf2Sync(
        this.password.normalize("NFKC"),
        Buffer.from(salt, "base64"),
        iterations,
        32,
        "sha256",
      );
      this.saltedCache?.set(cacheKey, salted);
    }
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientKey = hmac(salted, "Client Key");
    const storedKey = createHash("sha256").update(clientKey).digest();
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i] ^ signature[i];
    this.serverSignature = hmac(hmac(salted, "Server Key"), authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString("base64")}`, "utf8").toString("base64");
  }

  verify(success: string): void {
    const final = Buffer.from(success, "base64").toString("utf8");
    const v = final.startsWith("v=") ? Buffer.from(final.slice(2), "base64") : undefined;
    if (!v || !this.serverSignature || v.length !== this.serverSignature.length)
      throw new Error(`bad SCRAM server-final-message: ${final}`);
    if (!timingSafeEqual(v, this.serverSignature)) throw new Error("SCRAM server signature wrong");
  }
}

/**
 * HT-SHA-256-NONE with a FAST token: one message, authcid NUL HMAC(token, "Initiator"); the
 * server proves it knows the token with HMAC(token, "Responder") as additional data.
 */
export function htExchange(username: string, token: string): SaslExchange {
  const mac = (label: string) => createHmac("sha256", token).update(label).digest();
  return {
    initial: () =>
      Buffer.concat([Buffer.from(`${username}\0`, "utf8"), mac("Initiator")]).toString("base64"),
    respond: () => {
      throw new Error("HT-SHA-256-NONE has no challenge");
    },
    verify: (success) => {
      const offered = Buffer.from(success, "base64");
      const expected = mac("Responder");
      if (offered.length !== expected.length || !timingSafeEqual(offered, expected))
        throw new Error("HT-SHA-256-NONE server proof wrong");
    },
  };
}
