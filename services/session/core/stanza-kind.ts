// Which stanzas may be answered: an iq result or error is never answered with another iq
// response (RFC 6120 §8.2.3), and an error stanza never with an error (§8.3.1).
import type { Element } from "ltx";

export function isIqResponse(iq: Element): boolean {
  return iq.attrs.type === "result" || iq.attrs.type === "error";
}

export function isResponseOrError(stanza: Element): boolean {
  return stanza.attrs.type === "error" || (stanza.is("iq") && stanza.attrs.type === "result");
}
