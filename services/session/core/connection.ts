// The XMPP state of one client connection, keyed by connection id. It is plain data so that
// it can be saved as a snapshot and continued by another session member.
import type { SmState } from "../features/sm/sm-state.js";
import type { BoshState } from "../io/bosh/bosh-state.js";
import type { ScramServerState } from "./sasl/scram.js";
import type { Sasl2Request } from "./sasl/sasl2.js";

export type Stage =
  /** Socket open, no <open/> yet. */
  | "connected"
  /** Stream opened, SASL not done. */
  | "opened"
  /** SASL succeeded; the client must restart the stream. */
  | "authenticated"
  /** Restarted after SASL, or authenticated by SASL2 (no restart); resource not bound yet. */
  | "restarted"
  /** Resource bound: stanzas flow. */
  | "bound"
  /**
   * XEP-0198: after SASL, asked to resume a session (owned by some shard) instead of binding;
   * waiting for the answer, frames are ignored. Also a session whose state is being moved
   * to a resuming connection, for the moment of the move.
   */
  | "resuming"
  /** Closing or closed: nothing more is processed. */
  | "closed";

export interface ConnState {
  connId: string;
  edgeId: string;
  shard: number;
  stage: Stage;
  streamId: string;
  /** Bare JID after SASL. */
  bareJid?: string;
  /** Bound resource. */
  resource?: string;
  authFailures: number;
  sasl?: ScramServerState;
  /** Mechanism chosen by an <auth/> without initial response, awaiting it (RFC 4422 §5). */
  saslAwaiting?: string;
  /** A SASL2 <authenticate/>'s inline requests (XEP-0388), until its exchange ends. */
  sasl2?: Sasl2Request;
  priority: number;
  /** Initial presence sent (RFC 6121 §4.2): the resource is "available". */
  available: boolean;
  /** Requested the roster: an interested resource (RFC 6121 §2.1.6). */
  interested: boolean;
  /** Stream entry id of the last packet applied, for idempotent redelivery. */
  lastEntryId: string;
  /**
   * The in-process id ("0-<serial>", own-member-intake.ts) of the last packet of this
   * connection's own socket its edge handed over in process and this state applied: such a
   * packet comes through the inbox after all (naming that id, packets.ts `i`) when its member
   * failed to finish it, and if the snapshot had been stored by then, it is a repeat. A
   * progress field, as lastEntryId: saved with snapshots, never a reason for one.
   */
  lastInProcessId?: string;
  /** ms since epoch of the last packet from the client. */
  lastActivityMs: number;
  /** ms since epoch when the socket opened (bounds the time to authenticate and bind). */
  openedAtMs: number;
  /** Set while closing a connection that was bound, so a retried close still cleans up. */
  boundBeforeClose?: boolean;
  /**
   * Outstanding server→client liveness check (client-pinger.ts) and when it was sent: an
   * XEP-0199 ping, answered by the iq result with its id, or with XEP-0198 an <r/> (no id),
   * answered by any <a/>.
   */
  ping?: { id?: string; sentAtMs: number };
  /** XEP-0198 stream management, once enabled. */
  sm?: SmState;
  /**
   * The edge terminated TLS for this connection (TCP c2s): it is confidential whatever the
   * deployment says, and offers SCRAM-*-PLUS with these channel bindings (base64, RFC 5056).
   */
  tls?: ConnTls;
  /** XEP-0124/0206: the connection is a BOSH session; its frames go through this state. */
  bosh?: BoshState;
  /**
   * Origins of the last stanzas routed to a connection that keeps what it is sent (XEP-0198
   * counts and queues it, BOSH queues it): bus/origin.ts rememberOrigin, LiveContext.send. A
   * sender's entry applied again after a crash routes its stanzas here again with the same
   * origins; the edge drops such repeats for sockets, but only after this state counted or
   * queued them. Absent until the first such delivery, and in snapshots written before it
   * existed.
   */
  recentOrigins?: string;
}

export interface ConnTls {
  /** tls-exporter (RFC 9266); TLS 1.3 only. */
  exporter?: string;
  /** tls-server-end-point (RFC 5929 §4). */
  endPoint?: string;
  /** tls-unique (RFC 5929 §3); TLS 1.2 full handshakes only (channel-binding.ts). */
  unique?: string;
}

export function newConnState(
  connId: string,
  edgeId: string,
  shard: number,
  now: number,
  tls?: ConnTls,
): ConnState {
  const conn: ConnState = {
    connId,
    edgeId,
    shard,
    stage: "connected",
    streamId: "",
    authFailures: 0,
    priority: 0,
    available: false,
    interested: false,
    lastEntryId: "0-0",
    lastActivityMs: now,
    openedAtMs: now,
  };
  if (tls) conn.tls = tls;
  return conn;
}

export function fullJidOf(conn: ConnState): string | undefined {
  return conn.bareJid && conn.resource ? `${conn.bareJid}/${conn.resource}` : undefined;
}

/**
 * The state as JSON, without the two fields every applied packet moves (lastEntryId,
 * lastActivityMs): a unit whose durable form is unchanged needs no snapshot. Skipping it is
 * safe because its entries are acknowledged only once their effects are stored, so they are
 * never applied again, except after a crash between the two, where origins make the repeat
 * deliver nothing twice (bus/origin.ts), as for any unit.
 */
export function durableJson(conn: ConnState): string {
  return JSON.stringify({
    ...conn,
    lastEntryId: "",
    lastActivityMs: 0,
    lastInProcessId: undefined,
  });
}

type Fields = Record<string, unknown>;

/** Whether `object` is a plain object of primitives (a shallow copy of it is a whole copy). */
function isFlat(object: object): boolean {
  if (Array.isArray(object)) return false;
  for (const value of Object.values(object))
    if (typeof value === "object" && value !== null) return false;
  return true;
}

/** Whether two flat objects hold the same fields with the same values. */
function sameFields(a: Fields, b: Fields, skip?: (key: string) => boolean): boolean {
  let fields = 0;
  for (const key in a) {
    fields++;
    if (skip?.(key)) continue;
    const value = a[key];
    const other = b[key];
    if (value === other) continue;
    // A nested object of a flat state: compared a level down (DurableCopy.of).
    if (typeof value !== "object" || value === null || typeof other !== "object" || other === null)
      return false;
    if (!sameFields(value as Fields, other as Fields)) return false;
  }
  return fields === Object.keys(b).length;
}

const isProgressField = (key: string) =>
  key === "lastEntryId" || key === "lastActivityMs" || key === "lastInProcessId";

/**
 * The state a unit starts from, for its rollback and to tell whether it changed anything
 * durable. Most units are a bound connection's chat, whose state holds only primitives and
 * flat objects (XEP-0198's counters, an outstanding ping): a copy two levels deep is then a
 * whole copy, and comparing its fields costs far less than the two JSON.stringify calls
 * durableJson would (measured on the session's profile). A state with deeper objects (a SASL2
 * request, a BOSH queue) is kept as durableJson.
 */
export class DurableCopy {
  /** The progress fields the state had (durableJson leaves them out). */
  private readonly lastEntryId: string;
  private readonly lastActivityMs: number;
  private readonly lastInProcessId: string | undefined;

  private constructor(
    conn: ConnState,
    private readonly flat: ConnState | undefined,
    private readonly json: string | undefined,
  ) {
    this.lastEntryId = conn.lastEntryId;
    this.lastActivityMs = conn.lastActivityMs;
    this.lastInProcessId = conn.lastInProcessId;
  }

  static of(conn: ConnState): DurableCopy {
    const copy = { ...conn } as Fields;
    for (const field in copy) {
      const nested = copy[field];
      if (typeof nested !== "object" || nested === null) continue;
      // Objects are changed in place by their features: each is copied, or the whole as JSON.
      if (!isFlat(nested)) return new DurableCopy(conn, undefined, durableJson(conn));
      copy[field] = { ...nested };
    }
    return new DurableCopy(conn, copy as unknown as ConnState, undefined);
  }

  /** Whether `conn` holds what this copy holds, the progress fields aside (durableJson). */
  sameAs(conn: ConnState): boolean {
    if (!this.flat) return durableJson(conn) === this.json;
    return sameFields(conn as unknown as Fields, this.flat as unknown as Fields, isProgressField);
  }

  /**
   * A fresh state equal to the copy, with the given progress fields: by default those the
   * state had when copied (a failed unit's rollback).
   */
  restore(
    lastEntryId = this.lastEntryId,
    lastActivityMs = this.lastActivityMs,
    lastInProcessId = this.lastInProcessId,
  ): ConnState {
    const conn = this.flat
      ? (DurableCopy.of(this.flat).flat as ConnState)
      : (JSON.parse(this.json as string) as ConnState);
    conn.lastEntryId = lastEntryId;
    conn.lastActivityMs = lastActivityMs;
    if (lastInProcessId === undefined) delete conn.lastInProcessId;
    else conn.lastInProcessId = lastInProcessId;
    return conn;
  }
}
