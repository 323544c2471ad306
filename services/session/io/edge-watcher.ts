// Finds edges that died without a word (kill -9, a lost node) and settles what they left
// (DESIGN.md, failure model "an edge dies"). Every edgeHeartbeatIntervalMs:
// - our connections whose edge address is no longer alive are ended, as a lost transport (a
//   `close` packet each, applied in the connection's turn): contacts get unavailable presence,
//   bindings go, later stanzas go offline;
// - edge addresses whose heartbeat lapsed are buried, and their inboxes recovered: every packet
//   the edge never handed to a socket comes back to its connection's shard as `undelivered`,
//   to be rerouted (offline, another resource) or bounced, never dropped. Any session process
//   may do this for any edge; a lock in the bus lets one do it at a time.
import { delay } from "../../shared/async/delay.js";
import type { Bus } from "../../shared/bus/bus.js";
import type { EdgePacket } from "../../shared/bus/packets.js";
import { parseConnId } from "../../shared/conn-id.js";
import type { EdgeRegistry } from "../../shared/edges/edge-registry.js";
import { returnInboxPackets } from "../../shared/bus/undelivered.js";
import type { ConnectionTable } from "./connection-table.js";
import type { LiveContext } from "./live-context.js";
import { isHibernating } from "./stream-management.js";

export interface EdgeWatcherDeps {
  base: LiveContext;
  table: ConnectionTable;
  edges: EdgeRegistry;
  bus: Bus;
}

export async function runEdgeWatcher(deps: EdgeWatcherDeps, signal: AbortSignal): Promise<void> {
  const { base } = deps;
  while (!signal.aborted) {
    await delay(base.config.edgeHeartbeatIntervalMs, signal);
    if (signal.aborted) break;
    try {
      await endConnectionsOfDeadEdges(deps);
      await recoverDeadEdgeInboxes(deps);
    } catch (err) {
      base.log.warn({ err }, "edge liveness check failed; will retry");
    }
  }
}

async function endConnectionsOfDeadEdges({
  base,
  table,
  edges,
  bus,
}: EdgeWatcherDeps): Promise<void> {
  const addresses = table.edgeAddresses();
  if (addresses.length === 0) return;
  for (const address of await edges.dead(addresses)) {
    // Hibernating sessions (XEP-0198) lost their transport already; BOSH sessions outlive
    // their edge (their client asks again through another one; bosh-apply.ts).
    const connIds = table.connsOnEdge(address).filter((id) => {
      const conn = table.get(id);
      return !isHibernating(conn) && conn?.bosh === undefined;
    });
    if (connIds.length === 0) continue;
    base.log.warn(
      { edge: address, connections: connIds.length },
      "edge is dead; ending its connections",
    );
    // As if the edge had reported each socket closed: the close is applied in the connection's
    // turn, with the processor's retries, so a failed write cannot leave contacts with a
    // presence that never ends. Should the edge be alive after all (Redis lost its data, and
    // with it the marks), the session also tells it to close the sockets: their clients log
    // in again. A dead edge has no inbox, so those writes store nothing.
    await Promise.all(
      connIds.map(async (connId) => {
        await bus.toShard(parseConnId(connId).shard, {
          k: "close",
          c: connId,
          e: address,
          d: "edge-dead",
        });
        await bus.toEdge(address, { k: "close", c: connId });
      }),
    );
  }
}

async function recoverDeadEdgeInboxes({ base, edges, bus }: EdgeWatcherDeps): Promise<void> {
  for (const address of await edges.expired()) {
    if (!(await edges.bury(address))) continue; // it heartbeat after all
    let recovered = 0;
    const forward = async (packets: EdgePacket[]) => {
      recovered += await returnInboxPackets(bus, address, packets);
    };
    if (!(await bus.recoverEdgeInbox(address, forward))) continue; // another process is on it
    await edges.forget(address);
    base.log.warn({ edge: address, recovered }, "recovered the inbox of a dead edge");
  }
}
