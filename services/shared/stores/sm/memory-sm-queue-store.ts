// SmQueueStore in process memory, for tests and single-process demo mode.
import type { SmQueueStore, UnackedStanza } from "./sm-queue-store.js";

export class MemorySmQueueStore implements SmQueueStore {
  /** `${shard} ${smId}` → seq → stanza */
  private readonly queues = new Map<string, Map<number, string>>();
  /** `${shard} ${connId}` → expiry, ms since epoch */
  private readonly settled = new Map<string, number>();

  async push(shard: number, smId: string, seq: number, stanza: string): Promise<void> {
    this.store(shard, [{ smId, seq, stanza }]);
  }

  /** push() of each, at once (MemoryFencedWrites stores them with the snapshots). */
  store(shard: number, unacked: readonly UnackedStanza[]): void {
    for (const { smId, seq, stanza } of unacked) {
      const key = `${shard} ${smId}`;
      let queue = this.queues.get(key);
      if (!queue) this.queues.set(key, (queue = new Map()));
      queue.set(seq, stanza);
    }
  }

  async range(shard: number, smId: string, from: number, to: number): Promise<string[]> {
    const queue = this.queues.get(`${shard} ${smId}`);
    const stanzas: string[] = [];
    if (!queue) return stanzas;
    for (let seq = from; seq <= to; seq++) {
      const stanza = queue.get(seq);
      if (stanza !== undefined) stanzas.push(stanza);
    }
    return stanzas;
  }

  async drop(shard: number, smId: string, from: number, to: number): Promise<void> {
    const key = `${shard} ${smId}`;
    const queue = this.queues.get(key);
    if (!queue) return;
    for (let seq = from; seq <= to; seq++) queue.delete(seq);
    if (queue.size === 0) this.queues.delete(key);
  }

  async delete(shard: number, smId: string): Promise<void> {
    this.queues.delete(`${shard} ${smId}`);
  }

  async markSettled(shard: number, connId: string, ttlMs: number): Promise<void> {
    this.settled.set(`${shard} ${connId}`, Date.now() + ttlMs);
  }

  async isSettled(shard: number, connId: string): Promise<boolean> {
    const key = `${shard} ${connId}`;
    const expiry = this.settled.get(key);
    if (expiry === undefined) return false;
    if (expiry > Date.now()) return true;
    this.settled.delete(key);
    return false;
  }
}
