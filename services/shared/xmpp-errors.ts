// RFC 6120 §4.9.3 (stream error conditions) and §8.3.3 (stanza error conditions).
// Errors are XMPP conditions: handlers throw these and one boundary turns them into XML.
import { Element } from "ltx";
import { NS_CLIENT, NS_STANZA_ERRORS, NS_STREAM_ERRORS, NS_STREAMS } from "./ns.js";

export type StreamErrorCondition =
  | "bad-format"
  | "bad-namespace-prefix"
  | "conflict"
  | "connection-timeout"
  | "host-gone"
  | "host-unknown"
  | "improper-addressing"
  | "internal-server-error"
  | "invalid-from"
  | "invalid-namespace"
  | "invalid-xml"
  | "not-authorized"
  | "not-well-formed"
  | "policy-violation"
  | "remote-connection-failed"
  | "reset"
  | "resource-constraint"
  | "restricted-xml"
  | "see-other-host"
  | "system-shutdown"
  | "undefined-condition"
  | "unsupported-encoding"
  | "unsupported-feature"
  | "unsupported-stanza-type"
  | "unsupported-version";

export type StanzaErrorCondition =
  | "bad-request"
  | "conflict"
  | "feature-not-implemented"
  | "forbidden"
  | "gone"
  | "internal-server-error"
  | "item-not-found"
  | "jid-malformed"
  | "not-acceptable"
  | "not-allowed"
  | "not-authorized"
  | "policy-violation"
  | "recipient-unavailable"
  | "redirect"
  | "registration-required"
  | "remote-server-not-found"
  | "remote-server-timeout"
  | "resource-constraint"
  | "service-unavailable"
  | "subscription-required"
  | "undefined-condition"
  | "unexpected-request";

/** RFC 6120 §8.3.2: the error type tells the sender whether and how to retry. */
export type StanzaErrorType = "auth" | "cancel" | "continue" | "modify" | "wait";

/** The default type for each condition, from the examples in RFC 6120 §8.3.3. */
const DEFAULT_TYPE: Record<StanzaErrorCondition, StanzaErrorType> = {
  "bad-request": "modify",
  conflict: "cancel",
  "feature-not-implemented": "cancel",
  forbidden: "auth",
  gone: "cancel",
  "internal-server-error": "cancel",
  "item-not-found": "cancel",
  "jid-malformed": "modify",
  "not-acceptable": "modify",
  "not-allowed": "cancel",
  "not-authorized": "auth",
  "policy-violation": "modify",
  "recipient-unavailable": "wait",
  redirect: "modify",
  "registration-required": "auth",
  "remote-server-not-found": "cancel",
  "remote-server-timeout": "wait",
  "resource-constraint": "wait",
  "service-unavailable": "cancel",
  "subscription-required": "auth",
  "undefined-condition": "cancel",
  "unexpected-request": "wait",
};

export class StanzaError extends Error {
  readonly type: StanzaErrorType;
  constructor(
    readonly condition: StanzaErrorCondition,
    type?: StanzaErrorType,
    readonly text?: string,
  ) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = "StanzaError";
    this.type = type ?? DEFAULT_TYPE[condition];
  }

  /** The `<error/>` child of an error stanza (RFC 6120 §8.3.2). */
  toElement(by?: string): Element {
    const error = new Element("error", { type: this.type, by });
    error.c(this.condition, { xmlns: NS_STANZA_ERRORS });
    if (this.text) error.c("text", { xmlns: NS_STANZA_ERRORS }).t(this.text);
    return error;
  }
}

export class StreamError extends Error {
  constructor(
    readonly condition: StreamErrorCondition,
    readonly text?: string,
  ) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = "StreamError";
  }

  /** `<stream:error/>` as sent over RFC 7395 framing (the prefix is bound in the element). */
  toElement(): Element {
    const error = new Element("stream:error", { "xmlns:stream": NS_STREAMS });
    error.c(this.condition, { xmlns: NS_STREAM_ERRORS });
    if (this.text) error.c("text", { xmlns: NS_STREAM_ERRORS }).t(this.text);
    return error;
  }
}

/**
 * RFC 6120 §8.3.1: an error reply swaps to/from, keeps id and type="error",
 * and includes the error child. The original payload is not echoed back, which
 * keeps error replies small and never reflects untrusted content.
 */
export function errorReply(stanza: Element, error: StanzaError, serverJid?: string): Element {
  // getName(): a prefixed original (<c:iq xmlns:c=…>) must not yield an unbound prefix.
  const reply = new Element(stanza.getName(), {
    xmlns: NS_CLIENT,
    type: "error",
    id: stanza.attrs.id,
    to: stanza.attrs.from,
    from: stanza.attrs.to ?? serverJid,
  });
  reply.cnode(error.toElement());
  return reply;
}
