// What the protocol core reports as it works, for the session's metrics (session-metrics.ts).
// Reporting has no effect on the stream; contexts without metrics (admin, unit tests) take
// NO_OBSERVER.
import type { SaslCondition } from "./sasl/sasl-failure.js";

/** How a SASL exchange ended: success, or the failure condition sent (RFC 6120 §6.5). */
export type LoginResult = "success" | SaslCondition;

export type StanzaKind = "message" | "presence" | "iq";

export interface CoreObserver {
  /** A SASL exchange ended with `result`; `mechanism` is what the client asked for. */
  login(mechanism: string, result: LoginResult): void;
  /** XEP-0198 §5: a resumption request was answered with <resumed/> or <failed/>. */
  resumption(result: "resumed" | "failed"): void;
  /** A bound client sent a stanza. */
  stanza(kind: StanzaKind): void;
  /**
   * A message went to a user's offline queue, which now holds `queueLength` messages
   * (undefined: the length could not be read).
   */
  offlineStored(queueLength: number | undefined): void;
}

export const NO_OBSERVER: CoreObserver = {
  login: () => undefined,
  resumption: () => undefined,
  stanza: () => undefined,
  offlineStored: () => undefined,
};
