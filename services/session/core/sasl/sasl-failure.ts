// RFC 6120 §6.5 (SASL errors): the defined <failure/> conditions.
import { Element } from "ltx";
import { NS_SASL, NS_SASL2 } from "../../../shared/ns.js";

export type SaslCondition =
  | "aborted"
  | "account-disabled"
  | "credentials-expired"
  | "encryption-required"
  | "incorrect-encoding"
  | "invalid-authzid"
  | "invalid-mechanism"
  | "malformed-request"
  | "mechanism-too-weak"
  | "not-authorized"
  | "temporary-auth-failure";

/**
 * Thrown by the SASL mechanisms; the SASL handler turns it into `<failure/>`. A failure is not a
 * stream error: RFC 6120 §6.4.5 lets the client retry on the same stream.
 */
export class SaslFailure extends Error {
  constructor(
    readonly condition: SaslCondition,
    readonly text?: string,
  ) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = "SaslFailure";
  }

  /** `<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>` (RFC 6120 §6.4.5). */
  toElement(): Element {
    const failure = new Element("failure", { xmlns: NS_SASL });
    failure.c(this.condition);
    if (this.text) failure.c("text").t(this.text);
    return failure;
  }

  /** XEP-0388 §2.6.2: `<failure xmlns='urn:xmpp:sasl:2'/>` with the RFC 6120 condition. */
  toSasl2Element(): Element {
    const failure = new Element("failure", { xmlns: NS_SASL2 });
    failure.c(this.condition, { xmlns: NS_SASL });
    if (this.text) failure.c("text").t(this.text);
    return failure;
  }
}
