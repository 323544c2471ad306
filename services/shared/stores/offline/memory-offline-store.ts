// OfflineStore in process memory, for tests and single-process demo mode.
import type { OfflineStore } from "./offline-store.js";

export class MemoryOfflineStore implements OfflineStore {
  /** bare JID → stanzas, oldest first */
  private readonly queues = new Map<string, string[]>();

  async push(user: string, stanza: string, max: number): Promise<boolean> {
    const queue = this.queues.get(user) ?? [];
    if (queue.length >= max) return false;
    queue.push(stanza);
    this.queues.set(user, queue);
    return true;
  }

  async takeAll(user: string): Promise<string[]> {
    const queue = this.queues.get(user) ?? [];
    this.queues.delete(user);
    return queue;
  }

  async count(user: string): Promise<number> {
    return this.queues.get(user)?.length ?? 0;
  }

  async deleteUser(user: string): Promise<void> {
    this.queues.delete(user);
  }
}
