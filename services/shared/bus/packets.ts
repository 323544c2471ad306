// The packets that cross the bus between tiers (DESIGN.md, "Packets and streams").
// Every kind below is DURABLE: it travels in a Redis stream, survives the crash of its
// reader and is acknowledged only after its effects are written. There are no ephemeral
// kinds yet; a kind that may be lost (e.g. typing notifications over pub/sub) must say so here.

/** Into a shard inbox `mp:{s<N>}:in`, read by the session member owning shard N. */
export type ShardPacket =
  /**
   * A socket was accepted by edge `e`; the session creates the connection's state. The edge
   * that terminated TLS itself (TCP c2s) says so: s: "1", and the channel-binding data of that
   * TLS connection, base64 (RFC 5056): x for tls-exporter (RFC 9266, TLS 1.3 only), t for
   * tls-server-end-point (RFC 5929 §4), u for tls-unique (RFC 5929 §3, TLS 1.2 full handshakes
   * only). An older edge sends none of them: not known secure.
   */
  | { k: "open"; c: string; e: string; s?: "1"; x?: string; t?: string; u?: string; i?: string }
  /** One complete WebSocket message (one XML element, RFC 7395 §3.3.3) from the client. */
  | { k: "data"; c: string; e: string; d: string; i?: string }
  /** The socket is gone (d: why, a CloseReason name); the session cleans up (unavailable presence). */
  | { k: "close"; c: string; e: string; d: string; i?: string }
  /**
   * A stanza for connection c, already stamped and addressed by the sending session. q: "1"
   * when the owner of c's shard queued it behind earlier stanzas for c that could not be
   * written at once (c was binding), so that later ones wait for it (per-recipient order).
   * o: the origin of the stanza (origin.ts), so that what c's session sends for it keeps it.
   */
  | { k: "route"; c: string; d: string; q?: "1"; o?: string }
  /** Connection c must end with stream error d (e.g. `conflict` when its resource is taken). */
  | { k: "kick"; c: string; d: string }
  /**
   * Stanza d, sent to connection c, never reached its socket: the edge (address e) does not hold
   * c (closed, or an edge restarted), closed it as a slow consumer first, or died before
   * delivering it (recovered from its inbox). The session ends c and reroutes d: offline
   * storage, another resource, or an error to its sender (DESIGN.md, accounting rule).
   */
  | { k: "undelivered"; c: string; e: string; d: string }
  /**
   * XEP-0198 resumption, to the shard named by the stream management id: connection c (on the
   * edge at address e, authenticated) asks to take over a session. d: ResumeRequest as JSON.
   */
  | { k: "resume"; c: string; e: string; d: string }
  /**
   * The answer to c's `resume`, to c's own shard: d is "" when the session moved to c's socket
   * (c's state is forgotten, its socket now belongs to the resumed session), else the
   * <failed/> element to send to c, which may then bind a resource instead.
   */
  | { k: "resume-result"; c: string; d: string }
  /**
   * One BOSH request (XEP-0124) of connection c, held by the edge at address e until the
   * session answers it with an edge `bosh` packet: d is the whole <body/> as the client sent
   * it. With no sid in d, it creates connection c (as `open` does), else its sid names c. The
   * session answers to e and makes e the connection's edge (BOSH is not sticky). s: on a
   * creation, the secret half of the sid (drawn by the edge, so the entry applied twice gives
   * the same sid).
   */
  | { k: "bosh"; c: string; e: string; d: string; s?: string };

/** What a `resume` packet asks (XEP-0198 §5: <resume previd h/> after SASL). */
export interface ResumeRequest {
  previd: string;
  /** The client's h: stanzas it handled from the old session, mod 2^32. */
  h: number;
  /** The bare JID connection c authenticated as: only its owner resumes a session. */
  jid: string;
}

/**
 * Into an edge inbox `mp:edge:{<address>}`, read by that edge alone. An edge's address is
 * `<edgeId>:<instance>` (edge-registry.ts): each incarnation of an edge id has its own inbox.
 */
export type EdgePacket =
  /**
   * Frames to write to connection c's socket, in order. o: their origin (origin.ts): a repeat
   * of an origin already written to the socket (an entry applied twice) is dropped.
   */
  | { k: "data"; c: string; d: string; o?: string }
  /** Close connection c's socket after the frames before it are written. */
  | { k: "close"; c: string }
  /**
   * From now on connection c's socket is connection d (XEP-0198 resumption moved a session onto
   * it): later packets name d, and its frames go to d's shard as d.
   */
  | { k: "rename"; c: string; d: string }
  /**
   * The answer to BOSH request r (its rid) of connection c: the <body/> d to write as the HTTP
   * response the edge holds for (c, r). One the edge no longer holds is dropped: the session
   * keeps it for the client's retry of r (XEP-0124 §14.3).
   */
  | { k: "bosh"; c: string; r: string; d: string };

// open, data and close: i is the id ("0-<serial>") the packet had when its edge handed it to
// its own process's member, which could not apply it (own-member-intake.ts); written to the
// inbox then, it is applied with the origins it had there (origin.ts), so that what the first
// attempt stored is recognised as a repeat.

export type ShardPacketKind = ShardPacket["k"];
export type OpenPacket = Extract<ShardPacket, { k: "open" }>;

export interface ShardEntry {
  /**
   * Stream entry id; monotonically increasing within one shard inbox. A packet handed over in
   * process (inProcess) has "0-<serial>" instead, unique in its process: no inbox entry has
   * a 0 millisecond part, so an origin made from it never names an inbox entry.
   */
  id: string;
  shard: number;
  packet: ShardPacket;
  /**
   * Handed to the member by its own process's edge without the inbox (own-member-intake.ts):
   * handed over once (if its member cannot finish it, it is written to the inbox, with `i`),
   * never acknowledged; its id is no inbox position, so it neither moves nor is checked
   * against the connection's lastEntryId (ConnState.lastInProcessId records it).
   */
  inProcess?: true;
}

/**
 * Compares two stream entry ids ("<ms>-<seq>"; a missing or empty part counts as 0) as the
 * two numbers they hold, digit by digit: it runs several times per applied entry, and
 * splitting and converting cost two arrays and four numbers each time.
 */
export function compareEntryIds(a: string, b: string): number {
  if (a === b) return 0;
  const aDash = dashOf(a);
  const bDash = dashOf(b);
  return (
    compareDigits(a, 0, aDash, b, 0, bDash) ||
    compareDigits(
      a,
      Math.min(aDash + 1, a.length),
      a.length,
      b,
      Math.min(bDash + 1, b.length),
      b.length,
    )
  );
}

function dashOf(id: string): number {
  const dash = id.indexOf("-");
  return dash < 0 ? id.length : dash;
}

/** Compares the decimal numbers a[aFrom, aTo) and b[bFrom, bTo): -1, 0 or 1. */
function compareDigits(
  a: string,
  aFrom: number,
  aTo: number,
  b: string,
  bFrom: number,
  bTo: number,
): number {
  while (aFrom < aTo && a.charCodeAt(aFrom) === ZERO) aFrom++;
  while (bFrom < bTo && b.charCodeAt(bFrom) === ZERO) bFrom++;
  if (aTo - aFrom !== bTo - bFrom) return aTo - aFrom < bTo - bFrom ? -1 : 1;
  for (; aFrom < aTo; aFrom++, bFrom++) {
    const d = a.charCodeAt(aFrom) - b.charCodeAt(bFrom);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

const ZERO = 48; // "0"

const SHARD_KINDS_WITH_EDGE = new Set(["open", "data", "close", "undelivered", "resume", "bosh"]);
const SHARD_KINDS_WITHOUT_EDGE = new Set(["route", "kick", "resume-result"]);

/** A shard packet from stream entry fields, or undefined when they do not form one. */
export function shardPacketOf(fields: string[] | null): ShardPacket | undefined {
  const f = fieldMap(fields);
  if (!f.c) return undefined;
  if (SHARD_KINDS_WITH_EDGE.has(f.k)) {
    if (!f.e || (f.k !== "open" && f.d === undefined)) return undefined;
  } else if (!SHARD_KINDS_WITHOUT_EDGE.has(f.k) || f.d === undefined) return undefined;
  if (f.q !== undefined && f.q !== "1") return undefined;
  if (f.i !== undefined) {
    // Only a socket's own packets are ever handed over in process.
    const own = f.k === "open" || f.k === "data" || f.k === "close";
    if (!own || !IN_PROCESS_ID.test(f.i)) return undefined;
  }
  if (f.k === "open") return openPacketOf(f);
  if (f.k === "bosh" && f.s !== undefined && !BASE64URL.test(f.s)) return undefined;
  return f as unknown as ShardPacket;
}

/** An `open`, its TLS fields only when they are well formed (else it is not secure). */
function openPacketOf(f: Record<string, string>): OpenPacket {
  const open: OpenPacket = { k: "open", c: f.c, e: f.e };
  if (f.i !== undefined) open.i = f.i;
  if (f.s !== "1") return open;
  open.s = "1";
  if (f.x && BASE64.test(f.x)) open.x = f.x;
  if (f.t && BASE64.test(f.t)) open.t = f.t;
  if (f.u && BASE64.test(f.u)) open.u = f.u;
  return open;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const IN_PROCESS_ID = /^0-\d{1,16}$/;
const BASE64URL = /^[\w-]+$/;

/** An edge packet from stream entry fields, or undefined when they do not form one. */
export function edgePacketOf(fields: string[] | null): EdgePacket | undefined {
  const f = fieldMap(fields);
  if (!f.c) return undefined;
  if (f.k === "data" && f.d !== undefined)
    return f.o === undefined
      ? { k: "data", c: f.c, d: f.d }
      : { k: "data", c: f.c, d: f.d, o: f.o };
  if (f.k === "close") return { k: "close", c: f.c };
  if (f.k === "rename" && f.d) return { k: "rename", c: f.c, d: f.d };
  if (f.k === "bosh" && f.r && f.d !== undefined) return { k: "bosh", c: f.c, r: f.r, d: f.d };
  return undefined;
}

/** Fields of an entry; null for a pending entry that was deleted from the stream. */
function fieldMap(fields: string[] | null): Record<string, string> {
  const packet: Record<string, string> = {};
  if (!fields) return packet;
  for (let i = 0; i + 1 < fields.length; i += 2) packet[fields[i]] = fields[i + 1];
  return packet;
}
