// AccountStore in process memory, for tests and single-process demo mode.
import { randomBytes } from "node:crypto";
import { jsonCopy } from "../json-copy.js";
import { STAND_IN_KEY_BYTES, type Account, type AccountStore } from "./account-store.js";

export class MemoryAccountStore implements AccountStore {
  private readonly accounts = new Map<string, Account>();
  /** Lives as long as the accounts it hides the absence of. */
  private readonly standIn = randomBytes(STAND_IN_KEY_BYTES);

  async get(bareJid: string): Promise<Account | undefined> {
    const account = this.accounts.get(bareJid);
    return account && jsonCopy(account);
  }

  async create(bareJid: string, account: Account): Promise<boolean> {
    if (this.accounts.has(bareJid)) return false;
    this.accounts.set(bareJid, jsonCopy(account));
    return true;
  }

  async update(bareJid: string, account: Account): Promise<boolean> {
    if (!this.accounts.has(bareJid)) return false;
    this.accounts.set(bareJid, jsonCopy(account));
    return true;
  }

  async delete(bareJid: string): Promise<boolean> {
    return this.accounts.delete(bareJid);
  }

  async standInKey(): Promise<Uint8Array> {
    return Buffer.from(this.standIn);
  }
}
