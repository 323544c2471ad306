// The BOSH part of a connection's state (XEP-0124), kept in ConnState so that it is in the
// snapshot and survives the failover of a session member like the rest. Plain data.

/** A request the session holds open (its HTTP response waits at edge `edge`). */
export interface HeldRequest {
  rid: number;
  /** Address of the edge holding its HTTP response (edge-registry.ts). */
  edge: string;
  /** ms since epoch when it arrived: it is answered by atMs + wait at the latest. */
  atMs: number;
}

export interface BoshState {
  /** The secret half of the sid (bosh-sid.ts). */
  secret: string;
  /**
   * Negotiated at creation (§7.1/§7.2): ms a request may be held, held requests, rid window.
   * Kept rather than derived from the settings: the client was told these, and a member with
   * other settings (a rolling upgrade) must go on honouring them.
   */
  waitMs: number;
  hold: number;
  requests: number;
  /** The BOSH version the creation response states. */
  ver: string;
  /** The highest rid applied; every rid up to it has been applied, in order (§14.3). */
  rid: number;
  /** Requests held for an answer, oldest first. */
  held: HeldRequest[];
  /** Answers sent, oldest first, for a client that asks again (§14.3); only rids in the window. */
  sent: { rid: number; body: string }[];
  /** Requests that arrived ahead of a missing rid, applied when the gap fills (§14.3). */
  early: { rid: number; body: string; edge: string }[];
  /** Frames for the client, waiting for a request to answer (RFC 7395 frames, translated). */
  out: string[];
  /** UTF-8 bytes of `out`, bounded by boshMaxPendingBytes. */
  outBytes: number;
  /** The first answer (the session creation response) has not been sent yet. */
  creating: boolean;
  /** The stream ended: the next answer terminates the session (with this condition, if any). */
  terminate?: { condition?: "remote-stream-error" };
  /** ms since epoch of the last request (a session with none held past inactivity is lost). */
  lastRequestMs: number;
}
