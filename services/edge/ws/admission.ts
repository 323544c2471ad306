// Who may open a connection on this edge (issue 6, item 7). Per client address (client-address.ts):
// a token bucket of upgrades, a cap on open connections and a cap on unauthenticated ones; per
// edge, a cap on unauthenticated ones. Each open connection costs the edge its buffers (uWS
// holds up to maxStanzaBytes + 1 KiB of an unfinished message per socket), and before it
// authenticates nobody is accountable for it: these caps bound what anonymous sockets can make
// the edge hold, however slowly they send.
//
// "Authenticated", seen from an edge that does not parse XMPP, is either of:
// - the session restarted the stream: it wrote its stream header (<open/>) to the socket a
//   second time, which it does only after SASL success (RFC 6120 §6.4.6, RFC 7395 §3.4; the
//   session refuses a second <open/> before that). A prefix check on frames, like keepalive.ts;
// - the session wrote a SASL2 <success/> (XEP-0388 §2.6.1), which authenticates with no restart:
//   only the session's SASL2 code writes a frame that starts so (stanzas start <message, <iq…);
// - the connection has stayed open for authTimeoutMs: the session ends every connection that
//   has not bound a resource by then, so one still open is past authentication.
import type { EdgePacket } from "../../shared/bus/packets.js";
import type { Config } from "../../shared/config.js";
import { TokenBucket } from "../token-bucket.js";
import type { Connection } from "./connection.js";

/** The settings admission enforces (config.ts documents each). */
export type AdmissionLimits = Pick<
  Config,
  | "maxConnectionsPerAddress"
  | "maxUnauthenticatedConnections"
  | "maxUnauthenticatedConnectionsPerAddress"
  | "upgradesPerAddressPerSecond"
  | "upgradeBurstPerAddress"
  | "maxTrackedAddresses"
  | "authTimeoutMs"
>;

/** Why an upgrade from one address is refused (upgrade.ts answers each with an HTTP status). */
export type AdmissionRefusal =
  | "upgrade-rate"
  | "address-connections"
  | "address-unauthenticated"
  | "unauthenticated-connections";

interface AddressCounts {
  open: number;
  unauthenticated: number;
}

/** RFC 7395 §3.4: every stream header the session writes is an <open/> element. */
const STREAM_HEADER_PREFIX = "<open ";
/** The session's second stream header is the restart after SASL success. */
const HEADERS_UNTIL_AUTHENTICATED = 2;
/** What the session's XEP-0388 <success/> starts with (it serializes with double quotes). */
const SASL2_SUCCESS_PREFIX = '<success xmlns="urn:xmpp:sasl:2"';

export class Admission {
  private readonly counts = new Map<string, AddressCounts>();
  /** Upgrade buckets by address key, least recently used first. */
  private readonly buckets = new Map<string, TokenBucket>();
  /** Unauthenticated connections, oldest first (open order is monotonic in openedAtMs). */
  private readonly unauthenticated = new Set<Connection>();
  /** Session stream headers seen per unauthenticated connection. */
  private readonly headersSeen = new WeakMap<Connection, number>();

  constructor(private readonly limits: AdmissionLimits) {}

  /** Open connections not yet authenticated, after promoting those past authTimeoutMs. */
  unauthenticatedCount(nowMs: number): number {
    this.promoteAged(nowMs);
    return this.unauthenticated.size;
  }

  /**
   * Why an upgrade from `address` (its key, client-address.ts) must be refused now, if it
   * must. Every call that gets this far is charged to the address's upgrade bucket.
   */
  refusal(address: string, nowMs: number): AdmissionRefusal | undefined {
    if (!this.bucketOf(address, nowMs).take(1, nowMs)) return "upgrade-rate";
    this.promoteAged(nowMs);
    const counts = this.counts.get(address);
    if (counts && counts.open >= this.limits.maxConnectionsPerAddress) return "address-connections";
    if (counts && counts.unauthenticated >= this.limits.maxUnauthenticatedConnectionsPerAddress)
      return "address-unauthenticated";
    if (this.unauthenticated.size >= this.limits.maxUnauthenticatedConnections)
      return "unauthenticated-connections";
    return undefined;
  }

  /** `conn` opened (right after an upgrade refusal() let through): it starts unauthenticated. */
  opened(conn: Connection): void {
    const counts = this.counts.get(conn.address) ?? { open: 0, unauthenticated: 0 };
    counts.open++;
    counts.unauthenticated++;
    this.counts.set(conn.address, counts);
    this.unauthenticated.add(conn);
  }

  /** `conn` closed: it no longer counts anywhere. */
  closed(conn: Connection): void {
    const counts = this.counts.get(conn.address);
    if (!counts) return;
    counts.open--;
    if (this.unauthenticated.delete(conn)) counts.unauthenticated--;
    if (counts.open === 0) this.counts.delete(conn.address);
  }

  /**
   * Looks at a batch from the session before it is written to the sockets: a connection
   * whose stream the session restarts, or that it tells of SASL2 success, is authenticated.
   * `lookup` finds a live connection.
   */
  sawSessionBatch(batch: EdgePacket[], lookup: (connId: string) => Connection | undefined): void {
    if (this.unauthenticated.size === 0) return;
    for (const packet of batch) this.sawSessionPacket(packet, lookup);
  }

  /** sawSessionBatch for one packet (the session's in-process writes come one at a time). */
  sawSessionPacket(packet: EdgePacket, lookup: (connId: string) => Connection | undefined): void {
    if (this.unauthenticated.size === 0 || packet.k !== "data") return;
    const sasl2 = packet.d.startsWith(SASL2_SUCCESS_PREFIX);
    if (!sasl2 && !packet.d.startsWith(STREAM_HEADER_PREFIX)) return;
    const conn = lookup(packet.c);
    if (!conn || !this.unauthenticated.has(conn)) return;
    if (sasl2) {
      this.authenticate(conn);
      return;
    }
    const seen = (this.headersSeen.get(conn) ?? 0) + 1;
    this.headersSeen.set(conn, seen);
    if (seen >= HEADERS_UNTIL_AUTHENTICATED) this.authenticate(conn);
  }

  private authenticate(conn: Connection): void {
    if (!this.unauthenticated.delete(conn)) return;
    const counts = this.counts.get(conn.address);
    if (counts) counts.unauthenticated--;
  }

  /** Touches only connections that are due: the set is in open order. */
  private promoteAged(nowMs: number): void {
    for (const conn of this.unauthenticated) {
      if (nowMs - conn.openedAtMs < this.limits.authTimeoutMs) return;
      this.authenticate(conn);
    }
  }

  /** The address's bucket, made most recently used; the least recent is forgotten past the bound. */
  private bucketOf(address: string, nowMs: number): TokenBucket {
    let bucket = this.buckets.get(address);
    if (bucket) this.buckets.delete(address);
    else {
      bucket = new TokenBucket(
        this.limits.upgradeBurstPerAddress,
        this.limits.upgradesPerAddressPerSecond,
        nowMs,
      );
      if (this.buckets.size >= this.limits.maxTrackedAddresses) {
        const leastRecent = this.buckets.keys().next().value as string;
        this.buckets.delete(leastRecent);
      }
    }
    this.buckets.set(address, bucket);
    return bucket;
  }
}
