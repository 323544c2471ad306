// AccountStore in Redis: one JSON string per user at keys.account. SET NX / SET XX make
// create and update atomic without a script.
import type { Redis } from "../../redis/client.js";
import type { Keys } from "../../redis/keys.js";
import type { Account, AccountStore } from "./account-store.js";

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
}
