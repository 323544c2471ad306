// XEP-0198 §4-§5 counters and ids. Counters are kept as totals (exact up to 2^53, which no
// session reaches) and put on the wire modulo 2^32, as the XEP's h wraps; an h from the client
// is read back as the smallest total at or past the last one it acknowledged.
import { randomId } from "../../../shared/random-id.js";

/** h wraps at 2^32 (XEP-0198 §4). */
export const H_MODULUS = 2 ** 32;

export interface SmState {
  /** Stream management id: "<shard>.<random>", so a resume on any connection finds its shard. */
  id: string;
  /** The client asked for resumption (<enable resume='true'/>). */
  resume: boolean;
  /** Stanzas handled from the client (our h). */
  handled: number;
  /** Stanzas sent to the client: they are numbered 1..sent. */
  sent: number;
  /** Stanzas the client acknowledged: 1..acked are no longer kept. */
  acked: number;
  /** Set while the transport is lost and the session waits to be resumed: when it ends, ms. */
  hibernateUntilMs?: number;
}

export function newSmState(shard: number, resume: boolean): SmState {
  return {
    id: `${shard}.${randomId(15, "base64url")}`,
    resume,
    handled: 0,
    sent: 0,
    acked: 0,
  };
}

/** The shard named by a stream management id, or undefined when it names none. */
export function shardOfSmId(id: string, shardCount: number): number | undefined {
  const match = /^(\d{1,9})\.[A-Za-z0-9_-]{1,64}$/.exec(id);
  if (!match) return undefined;
  const shard = Number(match[1]);
  return shard < shardCount ? shard : undefined;
}

/** A counter as the XEP's h attribute. */
export function wireH(total: number): string {
  return String(total % H_MODULUS);
}

/** Parses an h attribute (an unsigned 32-bit integer); undefined when it is not one. */
export function parseH(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,10}$/.test(value)) return undefined;
  const h = Number(value);
  return h < H_MODULUS ? h : undefined;
}

/**
 * The total the client acknowledges with `h`, given it had acknowledged `acked` before: a
 * wrapped h counts on from there, and acks never go back (an h behind the last one, by less
 * than half the modulus, is a stale ack and acknowledges nothing new).
 */
export function ackedTotal(acked: number, h: number): number {
  const ahead = (((h - acked) % H_MODULUS) + H_MODULUS) % H_MODULUS;
  return ahead > H_MODULUS / 2 ? acked : acked + ahead;
}

/** Stanzas sent and not yet acknowledged. */
export function unacked(sm: SmState): number {
  return sm.sent - sm.acked;
}
