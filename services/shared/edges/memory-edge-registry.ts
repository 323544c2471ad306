// In-process edge registry (all-in-one and tests): an edge lives exactly as long as it is
// registered, since it can only die together with the sessions that would watch it.
import type { EdgeHeartbeat, EdgeRegistry } from "./edge-registry.js";

export class MemoryEdgeRegistry implements EdgeRegistry {
  private readonly holders = new Map<string, string>();
  private readonly alive = new Set<string>();

  async register(edgeId: string, address: string): Promise<string | undefined> {
    const holder = this.holders.get(edgeId);
    if (holder !== undefined && holder !== address) return holder;
    this.holders.set(edgeId, address);
    this.alive.add(address);
    return undefined;
  }

  async heartbeat(edgeId: string, address: string): Promise<EdgeHeartbeat> {
    return this.holders.get(edgeId) === address && this.alive.has(address) ? "alive" : "lost";
  }

  async unregister(edgeId: string, address: string): Promise<void> {
    if (this.holders.get(edgeId) === address) this.holders.delete(edgeId);
    this.alive.delete(address);
  }

  async dead(addresses: readonly string[]): Promise<string[]> {
    return addresses.filter((a) => !this.alive.has(a));
  }

  async expired(): Promise<string[]> {
    return [];
  }

  async bury(address: string): Promise<boolean> {
    return !this.alive.has(address);
  }

  async forget(): Promise<void> {}
}
