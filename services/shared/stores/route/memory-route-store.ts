// RouteStore in process memory, for tests and single-process demo mode.
import { jsonCopy } from "../json-copy.js";
import type { BindResult, OnlineResource, RouteStore } from "./route-store.js";

export class MemoryRouteStore implements RouteStore {
  /** bare JID → resource → binding */
  private readonly users = new Map<string, Map<string, OnlineResource>>();

  async bind(
    bareJid: string,
    resource: string,
    connId: string,
    maxResources: number,
  ): Promise<BindResult> {
    const resources = this.users.get(bareJid) ?? new Map<string, OnlineResource>();
    const previous = resources.get(resource);
    if (!previous && resources.size >= maxResources) return { ok: false, reason: "full" };
    resources.set(resource, { resource, connId, priority: 0, interested: false });
    this.users.set(bareJid, resources);
    if (!previous) return { ok: true };
    return {
      ok: true,
      previous: { connId: previous.connId, available: previous.presence !== undefined },
    };
  }

  async update(
    bareJid: string,
    resource: string,
    connId: string,
    patch: Partial<Pick<OnlineResource, "priority" | "presence" | "interested">>,
  ): Promise<boolean> {
    const binding = this.users.get(bareJid)?.get(resource);
    if (binding?.connId !== connId) return false;
    if (patch.priority !== undefined) binding.priority = patch.priority;
    if (patch.interested !== undefined) binding.interested = patch.interested;
    if ("presence" in patch) {
      if (patch.presence === undefined) delete binding.presence;
      else binding.presence = patch.presence;
    }
    return true;
  }

  async unbind(bareJid: string, resource: string, connId: string): Promise<boolean> {
    const resources = this.users.get(bareJid);
    if (resources?.get(resource)?.connId !== connId) return false;
    resources.delete(resource);
    if (resources.size === 0) this.users.delete(bareJid);
    return true;
  }

  async list(bareJid: string): Promise<OnlineResource[]> {
    return [...(this.users.get(bareJid)?.values() ?? [])].map(jsonCopy);
  }
}
