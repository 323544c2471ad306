// OfflineStore in process memory, for tests and single-process demo mode.
import {
  OFFLINE_ORIGIN_TTL_MS,
  type OfflineLimits,
  type OfflinePushResult,
  type OfflineStore,
} from "./offline-store.js";

interface Queue {
  /** Oldest first. */
  stanzas: string[];
  /** The sender of each stanza ("" for none), in step with `stanzas`. */
  senders: string[];
  /** Sum of the UTF-8 lengths of `stanzas`. */
  bytes: number;
  /** Stanzas queued per sender. */
  perSender: Map<string, number>;
}

export class MemoryOfflineStore implements OfflineStore {
  /** bare JID → queue */
  private readonly queues = new Map<string, Queue>();
  /** "<user>|<origin>" → when stored, oldest first. */
  private readonly origins = new Map<string, number>();

  async pushFrom(
    user: string,
    sender: string,
    stanza: string,
    limits: OfflineLimits,
    origin?: string,
  ): Promise<OfflinePushResult> {
    if (origin !== undefined && this.rememberedOrigin(user, origin)) return "stored";
    const queue = this.queues.get(user) ?? {
      stanzas: [],
      senders: [],
      bytes: 0,
      perSender: new Map<string, number>(),
    };
    const size = Buffer.byteLength(stanza, "utf8");
    if (queue.stanzas.length + 1 > limits.maxMessages || queue.bytes + size > limits.maxBytes)
      return "full";
    const held = queue.perSender.get(sender) ?? 0;
    if (sender !== "" && held + 1 > limits.maxPerSender) return "sender-full";
    queue.stanzas.push(stanza);
    queue.senders.push(sender);
    queue.bytes += size;
    if (sender !== "") queue.perSender.set(sender, held + 1);
    this.queues.set(user, queue);
    if (origin !== undefined) this.origins.set(`${user}|${origin}`, Date.now());
    return "stored";
  }

  /** Whether `origin` was stored for `user` within the TTL; forgets expired ones. */
  private rememberedOrigin(user: string, origin: string): boolean {
    const now = Date.now();
    for (const [key, at] of this.origins) {
      if (now - at < OFFLINE_ORIGIN_TTL_MS) break; // insertion order: the rest are newer
      this.origins.delete(key);
    }
    return this.origins.has(`${user}|${origin}`);
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
    for (const sender of queue.senders.splice(0, removed)) {
      const left = (queue.perSender.get(sender) ?? 0) - 1;
      if (left > 0) queue.perSender.set(sender, left);
      else queue.perSender.delete(sender);
    }
    if (queue.stanzas.length === 0) this.queues.delete(user);
    return removed;
  }

  async count(user: string): Promise<number> {
    return this.queues.get(user)?.stanzas.length ?? 0;
  }

  async deleteUser(user: string): Promise<void> {
    this.queues.delete(user);
    for (const key of this.origins.keys()) if (key.startsWith(`${user}|`)) this.origins.delete(key);
  }
}
