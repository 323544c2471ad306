// RouteStore in process memory, for tests and single-process demo mode.
import { jsonCopy } from "../json-copy.js";
import type {
  BindResult,
  OnlineResource,
  ResourcePresence,
  RoutePatch,
  RouteStore,
  TakenOver,
} from "./route-store.js";

interface Binding {
  route: OnlineResource;
  /** Set exactly while route.available. */
  presence?: string;
  /** The binding this one replaced, for a bind delivered again. */
  took?: TakenOver;
}

export class MemoryRouteStore implements RouteStore {
  /** bare JID → resource → binding */
  private readonly users = new Map<string, Map<string, Binding>>();

  async bind(
    bareJid: string,
    resource: string,
    connId: string,
    maxResources: number,
  ): Promise<BindResult> {
    const resources = this.users.get(bareJid) ?? new Map<string, Binding>();
    const previous = resources.get(resource);
    if (!previous && resources.size >= maxResources) return { ok: false, reason: "full" };
    let took: TakenOver | undefined;
    if (previous?.route.connId === connId) took = previous.took;
    else if (previous)
      took = { connId: previous.route.connId, available: previous.route.available };
    resources.set(resource, {
      route: { resource, connId, priority: 0, available: false, interested: false },
      took,
    });
    this.users.set(bareJid, resources);
    return took ? { ok: true, previous: { ...took } } : { ok: true };
  }

  async update(
    bareJid: string,
    resource: string,
    connId: string,
    patch: RoutePatch,
  ): Promise<boolean> {
    const binding = this.users.get(bareJid)?.get(resource);
    if (binding?.route.connId !== connId) return false;
    if (patch.priority !== undefined) binding.route.priority = patch.priority;
    if (patch.interested !== undefined) binding.route.interested = patch.interested;
    if ("presence" in patch) {
      binding.route.available = patch.presence !== undefined;
      if (patch.presence === undefined) delete binding.presence;
      else binding.presence = patch.presence;
    }
    if ("edge" in patch) {
      if (patch.edge === undefined) delete binding.route.edge;
      else binding.route.edge = patch.edge;
    }
    // Direct writes go only to an available resource (route-store.ts, OnlineResource.edge).
    if (!binding.route.available) delete binding.route.edge;
    return true;
  }

  async unbind(bareJid: string, resource: string, connId: string): Promise<boolean> {
    const resources = this.users.get(bareJid);
    if (resources?.get(resource)?.route.connId !== connId) return false;
    resources.delete(resource);
    if (resources.size === 0) this.users.delete(bareJid);
    return true;
  }

  async list(bareJid: string): Promise<OnlineResource[]> {
    return [...(this.users.get(bareJid)?.values() ?? [])].map((b) => jsonCopy(b.route));
  }

  async presences(bareJid: string): Promise<ResourcePresence[]> {
    const found: ResourcePresence[] = [];
    for (const { route, presence } of this.users.get(bareJid)?.values() ?? []) {
      if (presence !== undefined)
        found.push({ resource: route.resource, connId: route.connId, presence });
    }
    return found;
  }
}
