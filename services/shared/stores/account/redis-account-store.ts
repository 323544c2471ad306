// AccountStore in Redis: one JSON string per user at keys.account. SET NX / SET XX make
// create and update atomic without a script. The stand-in key is one base64 string at
// keys.scramStandInKey, created with SET NX by whichever process finds it missing first.
import { randomBytes } from "node:crypto";
import type { Redis } from "../../redis/client.js";
import type { Keys } from "../../redis/keys.js";
import { STAND_IN_KEY_BYTES, type Account, type AccountStore } from "./account-store.js";

export class RedisAccountStore implements AccountStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async get(bareJid: string): Promise<Account | undefined> {
    const json = await this.redis.get(this.keys.account(bareJid));
    return json === null ? undefined : (JSON.parse(json) as Account);
  }

  async create(bareJid: string, account: Account): Promise<boolean> {
    const reply = await this.redis.set(this.keys.account(bareJid), JSON.stringify(account), "NX");
    return reply === "OK";
  }

  async update(bareJid: string, account: Account): Promise<boolean> {
    const reply = await this.redis.set(this.keys.account(bareJid), JSON.stringify(account), "XX");
    return reply === "OK";
  }

  async delete(bareJid: string): Promise<boolean> {
    return (await this.redis.del(this.keys.account(bareJid))) === 1;
  }

  /**
   * One GET on every call; only while the key is missing, SET NX then GET, sent together on
   * one connection (one round trip): Redis runs them in order, so that GET returns the key
   * whoever created it. Not cached: a Redis that lost its data gets one new key that every
   * process reads, instead of each keeping its own old one. The extra round trip of the first
   * call depends on the deployment's state, not on the user asked about, so it tells nothing.
   */
  async standInKey(): Promise<Uint8Array> {
    const key = this.keys.scramStandInKey();
    const existing = await this.redis.get(key);
    if (existing !== null) return Buffer.from(existing, "base64");
    const candidate = randomBytes(STAND_IN_KEY_BYTES).toString("base64");
    const [, stored] = await Promise.all([
      this.redis.set(key, candidate, "NX"),
      this.redis.get(key),
    ]);
    // Only a FLUSHALL between the two commands leaves nothing: this answer uses the candidate
    // and the next call creates the key again.
    return Buffer.from(stored ?? candidate, "base64");
  }
}
