// FastTokenStore in Redis: keys.fastTokens(user, agent) is a hash with the slots `fresh` and
// `current`, each a record "<expiresAtMs> <count> <mechanism> <hash>" (no field holds a space:
// mechanism names and base64 do not), under the user's hash tag. The key expires with its
// latest token; use and invalidate are scripts (scripts.ts) so a count is never accepted twice.
import type { Redis } from "../../redis/client.js";
import type { Keys } from "../../redis/keys.js";
import { scriptCommands, type ScriptCommands } from "../../redis/script-commands.js";
import type { FastToken, FastTokenStore } from "./fast-token-store.js";

const RECORD = /^(\d+) (\d+) (\S+) (\S+)$/;

function encode(token: FastToken): string {
  return `${token.expiresAtMs} ${token.count} ${token.mechanism} ${token.hash}`;
}

function decode(record: string | null): FastToken | undefined {
  const match = record === null ? null : RECORD.exec(record);
  if (!match) return undefined;
  const [, expiresAtMs, count, mechanism, hash] = match;
  return {
    expiresAtMs: Number(expiresAtMs),
    count: Number(count),
    mechanism: mechanism as string,
    hash: hash as string,
  };
}

export class RedisFastTokenStore implements FastTokenStore {
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {
    this.scripts = scriptCommands(redis);
  }

  async get(bareJid: string, agentId: string): Promise<FastToken[]> {
    const records = await this.redis.hmget(
      this.keys.fastTokens(bareJid, agentId),
      "fresh",
      "current",
    );
    return records.map(decode).filter((t) => t !== undefined);
  }

  async issue(bareJid: string, agentId: string, token: FastToken): Promise<void> {
    await this.scripts.mpFastTokenIssue(
      this.keys.fastTokens(bareJid, agentId),
      encode(token),
      token.expiresAtMs,
    );
  }

  async use(
    bareJid: string,
    agentId: string,
    hash: string,
    nowMs: number,
    count?: number,
  ): Promise<boolean> {
    const key = this.keys.fastTokens(bareJid, agentId);
    return (await this.scripts.mpFastTokenUse(key, hash, nowMs, count ?? "")) === 1;
  }

  async invalidate(bareJid: string, agentId: string, hash: string): Promise<boolean> {
    const key = this.keys.fastTokens(bareJid, agentId);
    return (await this.scripts.mpFastTokenInvalidate(key, hash)) === 1;
  }
}
