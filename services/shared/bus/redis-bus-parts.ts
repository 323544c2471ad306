// What the Redis bus's pieces share: options, names, reply shapes and the connections.
import type { Logger } from "../log.js";
import type { Redis } from "../redis/client.js";
import type { CommandTimer } from "../redis/command-timer.js";
import type { Keys } from "../redis/keys.js";
import { scriptCommands } from "../redis/script-commands.js";

export const SESSION_GROUP = "session";

export interface RedisBusOptions {
  url: string;
  keys: Keys;
  log: Logger;
  /** Entries per XREAD/XREADGROUP (per stream). */
  readCount: number;
  /** Shard entries a consumer hands over and not yet acknowledged (inboxEntriesInFlight). */
  entriesInFlight: number;
  /** How long the reader waits for the batch it just handed over (inboxSlowBatchMs). */
  slowBatchMs: number;
  /** How long one blocking read waits. */
  blockMs: number;
  /** How often acknowledged entries are trimmed. */
  trimIntervalMs: number;
  /** Entries another consumer left pending this long are claimed by this one (XAUTOCLAIM). */
  claimIdleMs: number;
  /** How long an edge inbox (and its recorded read position) outlives the last refresh by its edge. */
  edgeInboxTtlMs: number;
  /** Times the bus's commands (megaphone_redis_command_duration_seconds); default: none. */
  timer?: CommandTimer;
}

export type StreamReply = [key: string, entries: [id: string, fields: string[] | null][]][] | null;

/** The writer (a turn's commands in one write) and a factory for one blocking client per read loop. */
export interface RedisBusParts {
  options: RedisBusOptions;
  writer: Redis;
  /** Times one logical command (options.timer, or nothing). */
  timer: CommandTimer;
  blockingClient(name: string, signal: AbortSignal): Redis;
}

/** XINFO replies are flat [name, value, …] arrays. */
export function packetOfInfo(info: unknown[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < info.length; i += 2) out[String(info[i])] = String(info[i + 1]);
  return out;
}

/** XINFO GROUPS of `stream`, routed by its key in a cluster too (STREAM_ADMIN). */
export function streamGroups(redis: Redis, stream: string): Promise<unknown[][]> {
  return scriptCommands(redis).mpStreamAdmin(stream, "XINFO", "GROUPS") as Promise<unknown[][]>;
}

/** XINFO STREAM of `stream` (STREAM_ADMIN). */
export function streamInfo(redis: Redis, stream: string): Promise<unknown[]> {
  return scriptCommands(redis).mpStreamAdmin(stream, "XINFO", "STREAM") as Promise<unknown[]>;
}

/** XGROUP CREATE … MKSTREAM (STREAM_ADMIN); a BUSYGROUP error when the group exists. */
export function createStreamGroup(
  redis: Redis,
  stream: string,
  group: string,
  startId: string,
): Promise<unknown> {
  return scriptCommands(redis).mpStreamAdmin(
    stream,
    "XGROUP",
    "CREATE",
    group,
    startId,
    "MKSTREAM",
  );
}
