// OfflineStore in process memory, for tests and single-process demo mode.
import type { OfflineStore } from "./offline-store.js";

interface Queue {
  /** Oldest first. */
  stanzas: string[];
  /** Sum of the UTF-8 lengths of `stanzas`. */
  bytes: number;
}

export class MemoryOfflineStore implements OfflineStore {
  /** bare JID → queue */
  private readonly queues = new Map<string, Queue>();

  async push(
    user: string,
    stanza: string,
    maxMessages: number,
    maxBytes: number,
  ): Promise<boolean> {
    const queue = this.queues.get(user) ?? { stanzas: [], bytes: 0 };
    const size = Buffer.byteLength(stanza, "utf8");
    if (queue.stanzas.length + 1 > maxMessages || queue.bytes + size > maxBytes) return false;
    queue.stanzas.push(stanza);
    queue.bytes += size;
    this.queues.set(user, queue);
    return true;
  }

  async takeAll(user: string): Promise<string[]> {
    const queue = this.queues.get(user);
    this.queues.delete(user);
    return queue?.stanzas ?? [];
  }

  async peek(user: string): Promise<string[]> {
    return [...(this.queues.get(user)?.stanzas ?? [])];
  }

  async removeDelivered(user: string, stanzas: string[]): Promise<number> {
    const queue = this.queues.get(user);
    if (!queue) return 0;
    let removed = 0;
    while (removed < stanzas.length && queue.stanzas[removed] === stanzas[removed]) removed++;
    for (const stanza of queue.stanzas.splice(0, removed))
      queue.bytes -= Buffer.byteLength(stanza, "utf8");
    if (queue.stanzas.length === 0) this.queues.delete(user);
    return removed;
  }

  async count(user: string): Promise<number> {
    return this.queues.get(user)?.stanzas.length ?? 0;
  }

  async deleteUser(user: string): Promise<void> {
    this.queues.delete(user);
  }
}
