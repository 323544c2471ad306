// RFC 7622 §3 (JID format and parts), with the PRECIS profiles it names (precis.ts): the
// localpart gets UsernameCaseMapped (§3.3: width mapping, lowercase, NFC, IdentifierClass, the
// bidi rule), the resourcepart OpaqueString (§3.4: spaces mapped, NFC, no controls, format
// characters or other disallowed code points). The domainpart is lowercased and NFC with the
// same disallowed code points and the bidi rule per label, but no IDNA processing (§3.2).
// precis.ts says where the character classes and the bidi rule are approximated.
import {
  bidiRuleProblem,
  disallowedCodePoint,
  opaqueString,
  usernameCaseMapped,
} from "./precis.js";
import { StanzaError } from "./xmpp-errors.js";

/** RFC 7622 §3.1: each part is at most 1023 octets once prepared. */
const MAX_PART_BYTES = 1023;
// Unicode Cc (C0, DEL, C1): RFC 7622 rules them out of every part.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// RFC 7622 §3.3.1 forbids these in the localpart; PRECIS IdentifierClass also forbids spaces.
const LOCAL_FORBIDDEN = /["&'/:<>@\s]/u;
const DOMAIN_FORBIDDEN = /["&'/<>@\\\s]/u;
const IPV6_LITERAL = /^\[[0-9a-f:.]+\]$/;

function malformed(text: string): StanzaError {
  return new StanzaError("jid-malformed", undefined, text);
}

function checkLength(part: string, name: string): void {
  if (Buffer.byteLength(part, "utf8") > MAX_PART_BYTES) {
    throw malformed(`${name} exceeds ${MAX_PART_BYTES} bytes`);
  }
}

function prepareLocal(local: string): string {
  const [prepared, problem] = usernameCaseMapped(local);
  if (CONTROL.test(prepared) || LOCAL_FORBIDDEN.test(prepared)) {
    throw malformed("forbidden character in localpart");
  }
  if (problem !== undefined) throw malformed(`localpart: ${problem}`);
  checkLength(prepared, "localpart");
  return prepared;
}

/**
 * RFC 7622 §3.2: the prepared form of a domainpart (lowercase, NFC, no trailing dot), used for
 * JIDs and for the served domain itself. Throws StanzaError("jid-malformed").
 */
export function prepareDomain(domain: string): string {
  // RFC 7622 §3.2: a trailing label separator is stripped before comparison.
  const prepared = domain.toLowerCase().normalize("NFC").replace(/\.$/, "");
  if (prepared === "") throw malformed("empty domainpart");
  if (
    CONTROL.test(prepared) ||
    DOMAIN_FORBIDDEN.test(prepared) ||
    prepared.split(".").includes("")
  ) {
    throw malformed("malformed domainpart");
  }
  // RFC 7622 §3.2: a domainpart is a name or an IP address; a colon belongs only inside an
  // IPv6 literal ("[::1]"), so "host:5222" (a port) is refused rather than served as a name.
  if (prepared.includes(":") && !IPV6_LITERAL.test(prepared)) {
    throw malformed("a colon in a domainpart belongs only in an IPv6 literal [..]");
  }
  const bad = disallowedCodePoint(prepared);
  if (bad !== undefined) throw malformed("disallowed character in domainpart");
  for (const label of prepared.split(".")) {
    const problem = bidiRuleProblem(label);
    if (problem !== undefined) throw malformed(`domainpart: ${problem}`);
  }
  checkLength(prepared, "domainpart");
  return prepared;
}

function prepareResource(resource: string): string {
  const [prepared, problem] = opaqueString(resource);
  if (CONTROL.test(prepared)) throw malformed("control character in resourcepart");
  if (problem !== undefined) throw malformed(`resourcepart: ${problem}`);
  checkLength(prepared, "resourcepart");
  return prepared;
}

/** A normalized JID; an empty local or resource means the part is absent. Immutable. */
export class Jid {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;

  /** Validates and normalizes each part; throws StanzaError("jid-malformed"). */
  constructor(local: string, domain: string, resource = "") {
    this.local = local === "" ? "" : prepareLocal(local);
    this.domain = prepareDomain(domain);
    this.resource = resource === "" ? "" : prepareResource(resource);
  }

  bare(): Jid {
    return this.resource === "" ? this : preparedJid(this.local, this.domain, "");
  }

  bareString(): string {
    return this.local === "" ? this.domain : `${this.local}@${this.domain}`;
  }

  toString(): string {
    return this.resource === "" ? this.bareString() : `${this.bareString()}/${this.resource}`;
  }

  equals(other: Jid): boolean {
    return (
      this.local === other.local && this.domain === other.domain && this.resource === other.resource
    );
  }
}

/** A Jid of parts already prepared (taken from another Jid): no second preparation. */
function preparedJid(local: string, domain: string, resource: string): Jid {
  return Object.assign(Object.create(Jid.prototype) as Jid, { local, domain, resource });
}

/**
 * Parsed JIDs by their text. Every stanza names one or two, mostly the same few per connection,
 * and preparing one (PRECIS: NFC, case mapping, the bidi rule) costs more than the rest of its
 * routing. Bounded: the oldest entry goes first. Only JIDs that parsed are kept.
 */
const PARSED = new Map<string, Jid>();
export const PARSED_JID_CACHE_SIZE = 10000;

/**
 * RFC 7622 §3.1: the resource runs from the first "/" (so it may itself hold "@" and "/"), and
 * the localpart ends at the first "@" before that. Throws StanzaError("jid-malformed").
 */
export function parseJid(s: string): Jid {
  const cached = PARSED.get(s);
  if (cached) return cached;
  const parsed = parseJidText(s);
  if (PARSED.size >= PARSED_JID_CACHE_SIZE) PARSED.delete(PARSED.keys().next().value as string);
  PARSED.set(s, parsed);
  return parsed;
}

function parseJidText(s: string): Jid {
  if (CONTROL.test(s)) throw malformed("control character in JID");
  const slash = s.indexOf("/");
  const head = slash === -1 ? s : s.slice(0, slash);
  const resource = slash === -1 ? undefined : s.slice(slash + 1);
  if (resource === "") throw malformed("empty resourcepart after '/'");
  const at = head.indexOf("@");
  const local = at === -1 ? "" : head.slice(0, at);
  if (at !== -1 && local === "") throw malformed("empty localpart before '@'");
  return new Jid(local, head.slice(at + 1), resource);
}

/** True if `s` parses as a JID without a resourcepart. */
export function isBareJid(s: string): boolean {
  try {
    return parseJid(s).resource === "";
  } catch {
    return false;
  }
}

/** Builds a JID from parts, normalizing and validating each one like parseJid. */
export function jid(local: string, domain: string, resource?: string): Jid {
  return new Jid(local, domain, resource);
}
