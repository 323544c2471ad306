// RouteStore in Redis: two hashes per user under the user's hash tag. keys.resources maps
// resource → routing JSON (connId, priority, available, interested), read by every routed
// stanza; keys.presences maps resource → {connId, presence} JSON for available resources,
// read only for probes and current presence. Bind, update and unbind are Lua scripts because
// each reads the holder's connId (bind: and the number of bound resources) before writing, and
// they keep the two hashes in step (a presence is stored exactly while its binding is
// available).
import type { Redis } from "../../redis/client.js";
import { UNTIMED, type CommandTimer } from "../../redis/command-timer.js";
import type { Keys } from "../../redis/keys.js";
import { scriptCommands, type ScriptCommands } from "../../redis/script-commands.js";
import type {
  BindResult,
  OnlineResource,
  ResourcePresence,
  RoutePatch,
  RouteStore,
} from "./route-store.js";

export class RedisRouteStore implements RouteStore {
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** Times the hot calls (megaphone_redis_command_duration_seconds). */
    private readonly timer: CommandTimer = UNTIMED,
  ) {
    this.scripts = scriptCommands(redis);
  }

  async bind(
    bareJid: string,
    resource: string,
    connId: string,
    maxResources: number,
  ): Promise<BindResult> {
    const binding: OnlineResource = {
      resource,
      connId,
      priority: 0,
      available: false,
      interested: false,
    };
    const reply = await this.timer.time("eval", () =>
      this.scripts.mpRouteBind(
        this.keys.resources(bareJid),
        this.keys.presences(bareJid),
        resource,
        JSON.stringify(binding),
        maxResources,
      ),
    );
    if (reply[0] === 0) return { ok: false, reason: "full" };
    if (reply.length === 3)
      return { ok: true, previous: { connId: reply[1], available: reply[2] === 1 } };
    return { ok: true };
  }

  async update(
    bareJid: string,
    resource: string,
    connId: string,
    patch: RoutePatch,
  ): Promise<boolean> {
    const fields: Record<string, number | boolean | string> = {};
    if (patch.priority !== undefined) fields.priority = patch.priority;
    if (patch.interested !== undefined) fields.interested = patch.interested;
    // "" removes it (see ROUTE_UPDATE).
    if ("edge" in patch) fields.edge = patch.edge ?? "";
    // "" leaves the presence alone; "0" clears it; "1" + XML stores it.
    let presence = "";
    if ("presence" in patch) presence = patch.presence === undefined ? "0" : `1${patch.presence}`;
    const updated = await this.timer.time("eval", () =>
      this.scripts.mpRouteUpdate(
        this.keys.resources(bareJid),
        this.keys.presences(bareJid),
        resource,
        connId,
        JSON.stringify(fields),
        presence,
      ),
    );
    return updated === 1;
  }

  async unbind(bareJid: string, resource: string, connId: string): Promise<boolean> {
    const removed = await this.timer.time("eval", () =>
      this.scripts.mpRouteUnbind(
        this.keys.resources(bareJid),
        this.keys.presences(bareJid),
        resource,
        connId,
      ),
    );
    return removed === 1;
  }

  async list(bareJid: string): Promise<OnlineResource[]> {
    // Read by every routed stanza: the hottest store call.
    const bindings = await this.timer.time("hgetall", () =>
      this.redis.hgetall(this.keys.resources(bareJid)),
    );
    return Object.values(bindings).map((json) => {
      const route = JSON.parse(json) as OnlineResource & { took?: unknown };
      // The bind script's own record (see ROUTE_BIND), not routing data.
      delete route.took;
      return route;
    });
  }

  async presences(bareJid: string): Promise<ResourcePresence[]> {
    const stored = await this.redis.hgetall(this.keys.presences(bareJid));
    return Object.entries(stored).map(([resource, json]) => {
      const { connId, presence } = JSON.parse(json) as { connId: string; presence: string };
      return { resource, connId, presence };
    });
  }
}
