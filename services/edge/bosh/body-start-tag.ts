// XEP-0124 §7: what the edge reads of a BOSH request, and nothing more: the start tag of its
// <body/> wrapper (rid, sid). The edge never parses XMPP (DESIGN.md); the session parses the
// whole body. Pure.
import { parseSid } from "../../shared/bosh-sid.js";
import { parseConnId } from "../../shared/conn-id.js";

export const NS_HTTPBIND = "http://jabber.org/protocol/httpbind";

export interface BodyStart {
  /** The request id, normalized (no leading zeros): with the connection, the key of its answer. */
  rid: string;
  /** The connection the sid names; absent for a session creation request. */
  connId?: string;
}

/** Longest start tag looked at: the attributes of a real <body/> fit in far less. */
export const MAX_START_TAG_CHARS = 4096;

// XML 1.0 names, restricted to ASCII: BOSH attributes are ASCII, and anything else is refused.
const ATTRIBUTE = /\s+([A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)\s*=\s*(?:"([^"<&]*)"|'([^'<&]*)')/y;
const TAG_END = /\s*(\/?)>/y;
const START = /^(?:<\?xml[^>]{0,200}\?>)?\s*<body(?=[\s/>])/;

/**
 * The rid and connection of `xml`, a client's <body/>, or undefined when its start tag is not
 * one (not a <body/> in the httpbind namespace, no positive integer rid, a sid that names no
 * connection, duplicate attributes, or longer than MAX_START_TAG_CHARS).
 */
export function readBodyStart(xml: string): BodyStart | undefined {
  const head = xml.length > MAX_START_TAG_CHARS ? xml.slice(0, MAX_START_TAG_CHARS) : xml;
  const start = START.exec(head);
  if (!start) return undefined;
  const attrs = new Map<string, string>();
  let at = start[0].length;
  for (;;) {
    ATTRIBUTE.lastIndex = at;
    const m = ATTRIBUTE.exec(head);
    if (!m) break;
    if (attrs.has(m[1])) return undefined;
    attrs.set(m[1], m[2] ?? m[3]);
    at = ATTRIBUTE.lastIndex;
  }
  TAG_END.lastIndex = at;
  const end = TAG_END.exec(head);
  if (!end) return undefined;
  // An empty <body/> must end there; one with content needs its end tag.
  if (end[1] === "" && !/<\/body>\s*$/.test(xml)) return undefined;
  if (end[1] === "/" && xml.slice(TAG_END.lastIndex).trim() !== "") return undefined;
  if (attrs.get("xmlns") !== NS_HTTPBIND) return undefined;
  const rid = attrs.get("rid");
  if (!rid || !/^\d{1,16}$/.test(rid) || !Number.isSafeInteger(Number(rid)) || Number(rid) < 1)
    return undefined;
  const body: BodyStart = { rid: String(Number(rid)) };
  const sid = attrs.get("sid");
  if (sid === undefined) return body;
  const named = parseSid(sid);
  if (!named) return undefined;
  try {
    parseConnId(named.connId);
  } catch {
    return undefined;
  }
  body.connId = named.connId;
  return body;
}
