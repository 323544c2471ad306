// Redis connections. The commands issued on one client in one event-loop turn leave in one
// socket write, so per-packet writes cost no round trip or system call of their own. On one
// server that is a corked socket (CorkingRedis); in a cluster, ioredis's auto-pipelining, which
// groups them per node. Blocking reads (XREAD/XREADGROUP BLOCK) get a client each.
//
// A `redis+cluster://` URL selects Redis Cluster (cluster-url.ts): the client is then an
// ioredis Cluster, which routes each command to the primary serving its key's slot. Both
// kinds share the command API, so the rest of the code takes either as `Redis`; what must be
// atomic or sent as one command spans keys of one hash tag only (keys.ts), so one slot.
//
// ioredis 5, not 6: ioredis 6's reply decoder parses the hot path's stream reads 5–6× slower
// than ioredis 5's redis-parser (`npm run bench:reply-parse`; about 4 µs per entry against
// 0.8), and every tier parses an entry per message. ioredis 5's cluster client finds no key in
// `XGROUP CREATE` and `XINFO` (its command table), so those go through a one-line script that
// names the key (STREAM_ADMIN in scripts.ts, called through redis-bus-parts.ts) and reach the
// slot's primary like every other command.
import { Cluster, Redis as SingleRedis, type Command, type RedisOptions } from "ioredis";
import { parseClusterUrl } from "./cluster-url.js";

/** One Redis server or a Redis Cluster: the same commands, routed by key in a cluster. */
export type Redis = SingleRedis | Cluster;

/** Whether commands reach one slot each (multi-key commands need keys of one slot). */
export function isCluster(redis: Redis): boolean {
  return redis instanceof Cluster;
}

/**
 * One server's client whose socket is corked from the first command of an event-loop turn
 * until the turn's I/O callbacks have run (setImmediate, as auto-pipelining schedules its
 * flush: every WebSocket message and Redis reply of one poll shares the write). Node then
 * writes the turn's commands with one writev. Auto-pipelining gets the same single write by
 * building a Pipeline object per turn, which costs 20–40 % more CPU per command at the batch
 * sizes the services see (docs/capacity.md, "CPU per message as the load grows", first cut).
 */
class CorkingRedis extends SingleRedis {
  private corked = false;

  override sendCommand(command: Command, stream?: Parameters<SingleRedis["sendCommand"]>[1]) {
    const socket = this.stream;
    if (!this.corked && !stream && socket && this.status === "ready") {
      this.corked = true;
      socket.cork();
      setImmediate(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    return super.sendCommand(command, stream);
  }
}

/** Options of each connection; in a cluster, of each node's connection. */
function connectionOptions(name: string, blocking: boolean): RedisOptions {
  if (blocking) return { connectionName: name, maxRetriesPerRequest: null };
  return {
    connectionName: name,
    // Fail commands quickly while disconnected instead of queueing them without bound.
    maxRetriesPerRequest: 2,
    // A command sent just before a disconnect may have run: resending an XADD or RPUSH would
    // duplicate it under a new id. Callers see the failure and retry at their own level.
    autoResendUnfulfilledCommands: false,
    enableOfflineQueue: true,
    lazyConnect: false,
  };
}

function connect(url: string, name: string, blocking: boolean): Redis {
  const options = connectionOptions(name, blocking);
  const cluster = parseClusterUrl(url);
  if (!cluster) {
    const single = { ...options, enableAutoPipelining: false };
    return blocking ? new SingleRedis(url, single) : new CorkingRedis(url, single);
  }
  return new Cluster(cluster.seeds, {
    // Auto-pipelining in a cluster batches per node; each command still goes to its slot.
    enableAutoPipelining: !blocking,
    // Except a script whose keys follow their count (FENCED_SNAPSHOT_WRITE, one key per
    // XEP-0198 queue it writes): auto-pipelining routes a script call by its first argument,
    // here that count, while a command sent on its own is routed by its keys.
    autoPipeliningIgnoredCommands: ["mpFencedSnapshotWrite"],
    // By default the cluster client sends a command again when its node's connection closed
    // under it (a failover), as autoResendUnfulfilledCommands would: off for the same reason.
    // Redirections (MOVED, ASK, TRYAGAIN) stay on: the command did not run on the first node.
    ...(blocking ? {} : { retryDelayOnFailover: 0 }),
    redisOptions: { ...options, username: cluster.username, password: cluster.password },
  });
}

export function createRedis(url: string, name: string): Redis {
  return connect(url, name, false);
}

/** A client for one blocking read loop: no auto-pipelining, no per-request retry limit. */
export function createBlockingRedis(url: string, name: string): Redis {
  return connect(url, name, true);
}
