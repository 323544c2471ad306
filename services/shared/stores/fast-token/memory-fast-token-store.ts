// FastTokenStore in process memory, for tests and single-process demo mode. Time is only what
// use() is told (the session core's clock), so an expired pair stays until a newer token or
// invalidate() replaces it: one entry per client installation that ever asked for a token.
import type { FastToken, FastTokenStore } from "./fast-token-store.js";

interface Slots {
  fresh?: FastToken;
  current?: FastToken;
}

export class MemoryFastTokenStore implements FastTokenStore {
  /** `${bareJid}\0${agentId}` → slots */
  private readonly pairs = new Map<string, Slots>();

  private slots(bareJid: string, agentId: string): Slots | undefined {
    return this.pairs.get(`${bareJid}\0${agentId}`);
  }

  async get(bareJid: string, agentId: string): Promise<FastToken[]> {
    const slots = this.slots(bareJid, agentId);
    return [slots?.fresh, slots?.current].filter((t) => t !== undefined).map((t) => ({ ...t }));
  }

  async issue(bareJid: string, agentId: string, token: FastToken): Promise<void> {
    const slots = this.slots(bareJid, agentId) ?? {};
    slots.fresh = { ...token };
    this.pairs.set(`${bareJid}\0${agentId}`, slots);
  }

  async use(
    bareJid: string,
    agentId: string,
    hash: string,
    nowMs: number,
    count?: number,
  ): Promise<boolean> {
    const slots = this.slots(bareJid, agentId);
    if (!slots) return false;
    const slot =
      slots.fresh?.hash === hash ? "fresh" : slots.current?.hash === hash ? "current" : undefined;
    const token = slot && slots[slot];
    if (!slot || !token || token.expiresAtMs <= nowMs) return false;
    if (count !== undefined) {
      if (count <= token.count) return false;
      token.count = count;
    }
    if (slot === "fresh") {
      slots.current = token;
      slots.fresh = undefined;
    }
    return true;
  }

  async invalidate(bareJid: string, agentId: string, hash: string): Promise<boolean> {
    const slots = this.slots(bareJid, agentId);
    if (!slots) return false;
    if (slots.fresh?.hash === hash) slots.fresh = undefined;
    else if (slots.current?.hash === hash) slots.current = undefined;
    else return false;
    if (!slots.fresh && !slots.current) this.pairs.delete(`${bareJid}\0${agentId}`);
    return true;
  }
}
