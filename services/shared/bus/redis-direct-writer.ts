// Two-hop delivery on one Redis server (docs/capacity.md): DIRECT_DELIVER checks the
// recipient's binding and the shard inbox's progress and writes to the edge inbox or, failing
// that, to the shard inbox, in one script on the bus's writer (a turn's commands in one write), so it is ordered
// with the writer's XADDs and costs no round trip of its own.
import { parseConnId } from "../conn-id.js";
import { scriptCommands, type ScriptCommands } from "../redis/script-commands.js";
import type { DirectOutcome, DirectWrite, DirectWriter } from "./bus.js";
import { SESSION_GROUP, type RedisBusParts } from "./redis-bus-parts.js";

export class RedisDirectWriter implements DirectWriter {
  private readonly scripts: ScriptCommands;

  constructor(private readonly parts: RedisBusParts) {
    this.scripts = scriptCommands(parts.writer);
  }

  async write(direct: DirectWrite): Promise<DirectOutcome> {
    const { keys } = this.parts.options;
    const { shard } = parseConnId(direct.connId);
    const [outcome, id] = await this.parts.timer.time("eval", () =>
      this.scripts.mpDirectDeliver(
        keys.resources(direct.bareJid),
        keys.edgeInbox(direct.edge),
        keys.shardInbox(shard),
        keys.directMarks(direct.member),
        direct.resource,
        direct.connId,
        direct.edge,
        direct.mark,
        SESSION_GROUP,
        direct.stanza,
        direct.origin ?? "",
        shard,
      ),
    );
    if (outcome === 1) return { path: "edge" };
    return { path: outcome === 0 ? "route" : "undelivered", inboxId: id };
  }
}
