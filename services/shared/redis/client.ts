// Redis connections. Commands on one client are auto-pipelined (ioredis collects the
// commands issued in one event-loop tick into one write), so per-packet writes cost no
// round trip of their own. Blocking reads (XREAD/XREADGROUP BLOCK) get a client each.
import { Redis } from "ioredis";

export type { Redis };

export function createRedis(url: string, name: string): Redis {
  return new Redis(url, {
    enableAutoPipelining: true,
    connectionName: name,
    // Fail commands quickly while disconnected instead of queueing them without bound.
    maxRetriesPerRequest: 2,
    // A command sent just before a disconnect may have run: resending an XADD or RPUSH would
    // duplicate it under a new id. Callers see the failure and retry at their own level.
    autoResendUnfulfilledCommands: false,
    enableOfflineQueue: true,
    lazyConnect: false,
  });
}

/** A client for one blocking read loop: no auto-pipelining, no per-request retry limit. */
export function createBlockingRedis(url: string, name: string): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
  });
}
