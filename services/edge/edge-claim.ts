// An edge's place in the mesh (edge-registry.ts): it claims its id before it serves, so two
// edges can never share an id (and each other's connections), and heartbeats while it runs,
// so that when it dies the sessions notice within edgeHeartbeatTtlMs and settle what it left.
import { randomBytes } from "node:crypto";
import { delay } from "../shared/async/delay.js";
import type { LoopHealth } from "../shared/async/loop-health.js";
import { ConfigError } from "../shared/config-parse.js";
import type { EdgeRegistry } from "../shared/edges/edge-registry.js";
import type { Logger } from "../shared/log.js";

/** A new incarnation's address: the id plus a random instance, so it never repeats. */
export function newEdgeAddress(edgeId: string): string {
  return `${edgeId}:${randomBytes(5).toString("hex")}`;
}

export interface EdgeClaimOptions {
  edges: EdgeRegistry;
  edgeId: string;
  address: string;
  heartbeatIntervalMs: number;
  heartbeatTtlMs: number;
  log: Logger;
}

/**
 * Claims the id, waiting for a predecessor's claim to lapse (a restart after kill -9 finds its
 * own old claim for up to heartbeatTtlMs). Fails, naming the holder, if it is still held then.
 */
export async function claimEdgeId(options: EdgeClaimOptions): Promise<void> {
  const { edges, edgeId, address, heartbeatIntervalMs, heartbeatTtlMs, log } = options;
  const deadline = Date.now() + heartbeatTtlMs + heartbeatIntervalMs;
  for (let waited = false; ; waited = true) {
    const holder = await edges.register(edgeId, address);
    if (holder === undefined) return;
    if (Date.now() >= deadline)
      throw new ConfigError(
        `edge id "${edgeId}" is held by the running edge ${holder}: give every edge its own --id / MEGAPHONE_ID`,
      );
    if (!waited) log.warn({ holder }, "edge id is held; waiting for the claim to lapse");
    await delay(heartbeatIntervalMs);
  }
}

/**
 * Renews the claim every heartbeatIntervalMs until `signal` aborts. Each renewal is reported
 * to `health`; `onLost` is called (once, then the loop ends) when the edge has lost its place.
 */
export async function runEdgeHeartbeat(
  options: EdgeClaimOptions & {
    health: LoopHealth;
    onLost(): void;
    /** The mark had vanished (Redis lost its data): the sockets' sessions may be gone. */
    onReset(): void;
  },
  signal: AbortSignal,
): Promise<void> {
  const { edges, edgeId, address, heartbeatIntervalMs, log, health } = options;
  while (!signal.aborted) {
    await delay(heartbeatIntervalMs, signal);
    if (signal.aborted) return;
    try {
      const beat = await edges.heartbeat(edgeId, address);
      if (beat !== "lost") {
        health.progressed();
        if (beat === "reset") {
          log.error({ address }, "liveness mark was gone (Redis lost its data?); closing sockets");
          options.onReset();
        }
        continue;
      }
      log.fatal(
        { address },
        "this edge was declared dead (or its id taken) while it could not heartbeat",
      );
      options.onLost();
      return;
    } catch (err) {
      health.failed();
      log.warn({ err }, "edge heartbeat failed; retrying");
    }
  }
}
