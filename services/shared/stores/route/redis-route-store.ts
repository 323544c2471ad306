// RouteStore in Redis: keys.resources is a hash resource → OnlineResource JSON. Bind, update
// and unbind are Lua scripts because each reads the holder's connId (bind: and the number of
// bound resources) before writing.
import type { Redis } from "../../redis/client.js";
import type { Keys } from "../../redis/keys.js";
import { scriptCommands, type ScriptCommands } from "../../redis/script-commands.js";
import type { BindResult, OnlineResource, RouteStore } from "./route-store.js";

type Patch = Partial<Pick<OnlineResource, "priority" | "presence" | "interested">>;

export class RedisRouteStore implements RouteStore {
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {
    this.scripts = scriptCommands(redis);
  }

  async bind(
    bareJid: string,
    resource: string,
    connId: string,
    maxResources: number,
  ): Promise<BindResult> {
    const binding: OnlineResource = { resource, connId, priority: 0, interested: false };
    const reply = await this.scripts.mpRouteBind(
      this.keys.resources(bareJid),
      resource,
      JSON.stringify(binding),
      maxResources,
    );
    if (reply[0] === 0) return { ok: false, reason: "full" };
    if (reply.length === 3)
      return { ok: true, previous: { connId: reply[1], available: reply[2] === 1 } };
    return { ok: true };
  }

  async update(bareJid: string, resource: string, connId: string, patch: Patch): Promise<boolean> {
    const updated = await this.scripts.mpRouteUpdate(
      this.keys.resources(bareJid),
      resource,
      connId,
      JSON.stringify(patchFields(patch)),
    );
    return updated === 1;
  }

  async unbind(bareJid: string, resource: string, connId: string): Promise<boolean> {
    return (await this.scripts.mpRouteUnbind(this.keys.resources(bareJid), resource, connId)) === 1;
  }

  async list(bareJid: string): Promise<OnlineResource[]> {
    const bindings = await this.redis.hgetall(this.keys.resources(bareJid));
    return Object.values(bindings).map((json) => JSON.parse(json) as OnlineResource);
  }
}

/** The patch as the update script reads it: a field to set, or null to remove it. */
function patchFields(patch: Patch): Record<string, string | number | boolean | null> {
  const fields: Record<string, string | number | boolean | null> = {};
  if (patch.priority !== undefined) fields.priority = patch.priority;
  if (patch.interested !== undefined) fields.interested = patch.interested;
  // JSON.stringify would drop an undefined presence, losing the request to clear it.
  if ("presence" in patch) fields.presence = patch.presence ?? null;
  return fields;
}
