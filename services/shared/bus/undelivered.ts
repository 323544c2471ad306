// Giving stanzas that never reached their socket back to their connection's session (the
// `undelivered` packet, packets.ts): from an edge that cannot hand them over, from a session
// whose write found no edge inbox, and from the recovery of a dead edge's inbox. One packet
// shape, one way to send it back until it is stored.
import { delay, retryDelayMs } from "../async/delay.js";
import { parseConnId } from "../conn-id.js";
import type { Logger } from "../log.js";
import type { Bus } from "./bus.js";
import type { EdgePacket, ShardPacket } from "./packets.js";

export function undeliveredPacket(
  connId: string,
  edgeAddress: string,
  stanza: string,
): ShardPacket {
  return { k: "undelivered", c: connId, e: edgeAddress, d: stanza };
}

/** Writes one stanza back to its connection's shard inbox (one attempt). */
export function returnUndelivered(
  bus: Bus,
  connId: string,
  edgeAddress: string,
  stanza: string,
): Promise<string> {
  return bus.toShard(parseConnId(connId).shard, undeliveredPacket(connId, edgeAddress, stanza));
}

/**
 * Writes one stanza back, retrying with backoff until it is stored or `signal` aborts: the
 * caller then must not consider it handed over (e.g. not move its inbox position past it).
 */
export async function returnUndeliveredUntilStored(
  bus: Bus,
  connId: string,
  edgeAddress: string,
  stanza: string,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  for (let failures = 0; ; failures++) {
    try {
      await returnUndelivered(bus, connId, edgeAddress, stanza);
      return;
    } catch (err) {
      if (signal.aborted) throw err;
      log.error({ err, connId }, "returning an undelivered stanza failed; retrying");
      await delay(retryDelayMs(failures), signal);
    }
  }
}

/** The data packets of a recovered edge inbox, back to their sessions; how many went. */
export async function returnInboxPackets(
  bus: Bus,
  edgeAddress: string,
  packets: readonly EdgePacket[],
): Promise<number> {
  const returned = packets.flatMap((p) =>
    p.k === "data" ? [returnUndelivered(bus, p.c, edgeAddress, p.d)] : [],
  );
  await Promise.all(returned);
  return returned.length;
}
