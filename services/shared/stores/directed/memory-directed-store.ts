// DirectedPresenceStore in process memory, for tests and single-process demo mode.
import type { DirectedAddResult, DirectedPresenceStore } from "./directed-store.js";

export class MemoryDirectedPresenceStore implements DirectedPresenceStore {
  /** `${shard} ${connId}` → recipients */
  private readonly recipients = new Map<string, Set<string>>();

  async add(
    shard: number,
    connId: string,
    jid: string,
    maxRecipients: number,
    maxBytes: number,
  ): Promise<DirectedAddResult> {
    const key = `${shard} ${connId}`;
    const set = this.recipients.get(key) ?? new Set<string>();
    if (set.has(jid)) return "present";
    let bytes = Buffer.byteLength(jid, "utf8");
    for (const each of set) bytes += Buffer.byteLength(each, "utf8");
    if (set.size + 1 > maxRecipients || bytes > maxBytes) return "full";
    set.add(jid);
    this.recipients.set(key, set);
    return "added";
  }

  async remove(shard: number, connId: string, jids: string[]): Promise<void> {
    const key = `${shard} ${connId}`;
    const set = this.recipients.get(key);
    if (!set) return;
    for (const jid of jids) set.delete(jid);
    if (set.size === 0) this.recipients.delete(key);
  }

  async list(shard: number, connId: string): Promise<string[]> {
    return [...(this.recipients.get(`${shard} ${connId}`) ?? [])];
  }
}
