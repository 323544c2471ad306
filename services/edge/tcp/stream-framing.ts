// Translates between an RFC 6120 XML stream over TCP and the RFC 7395 framing the session tier
// speaks (DESIGN.md: the session tier is transport-agnostic). Inbound: the stream header
// `<stream:stream>` becomes an `<open/>` frame, `</stream:stream>` a `<close/>` frame, and each
// top-level element gets the namespace declarations it inherits from the stream header (RFC 7395
// §3.3.3: every frame is a complete element and carries its own namespace, jabber:client for
// stanzas). Outbound: the session's `<open/>` becomes a `<stream:stream>` header and its
// `<close/>` becomes `</stream:stream>`; everything else already carries its namespaces.
import { NS_CLIENT, NS_FRAMING, NS_STREAMS } from "../../shared/ns.js";
import { SplitError } from "./xml-splitter.js";

export interface StartTag {
  /** Qualified name. */
  name: string;
  /** Attributes in document order, values as written (still escaped). */
  attrs: { name: string; value: string; quote: string }[];
  /** Offset of the first character after the name. */
  nameEnd: number;
}

/** Reads the start tag at the beginning of `xml` (the splitter has found its boundaries). */
export function readStartTag(xml: string): StartTag {
  const nameMatch = /^<([^\s/>]+)/.exec(xml);
  if (!nameMatch) throw new SplitError("not-well-formed", "malformed start tag");
  const attrs: StartTag["attrs"] = [];
  const attr = /\s*([^\s=/>]+)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')|\s*(\/?>)/y;
  attr.lastIndex = nameMatch[0].length;
  for (;;) {
    const m = attr.exec(xml);
    if (!m) throw new SplitError("not-well-formed", "malformed attribute");
    if (m[4] !== undefined) break;
    attrs.push(
      m[2] !== undefined
        ? { name: m[1], value: m[2], quote: '"' }
        : { name: m[1], value: m[3] ?? "", quote: "'" },
    );
  }
  return { name: nameMatch[1], attrs, nameEnd: nameMatch[0].length };
}

function attrValue(tag: StartTag, name: string): string | undefined {
  return tag.attrs.find((a) => a.name === name)?.value;
}

/** What a client's stream header says, for the frames of that stream. */
export interface ClientStream {
  /** The RFC 7395 `<open/>` frame for the session. */
  open: string;
  /** Namespace declarations (` xmlns:p="…"`) of the header that elements may use, by prefix. */
  prefixes: Map<string, string>;
}

/** Attributes of a client header the session reads from `<open/>` (RFC 7395 §3.4). */
const OPEN_ATTRIBUTES = new Set(["to", "from", "version", "xml:lang", "id"]);

/**
 * Checks a client's stream header (RFC 6120 §4.8: the streams namespace, and jabber:client as
 * the content namespace) and makes its `<open/>`. Throws SplitError (invalid-namespace,
 * bad-namespace-prefix, not-well-formed).
 */
export function readClientHeader(tagXml: string): ClientStream {
  const tag = readStartTag(tagXml);
  const colon = tag.name.indexOf(":");
  const prefix = colon === -1 ? "" : tag.name.slice(0, colon);
  const streamNs = attrValue(tag, prefix === "" ? "xmlns" : `xmlns:${prefix}`);
  if (streamNs === undefined)
    throw new SplitError("bad-namespace-prefix", "the stream prefix is not declared");
  if (streamNs !== NS_STREAMS)
    throw new SplitError("invalid-namespace", `the stream element is in ${NS_STREAMS}`);
  // RFC 6120 §4.8.2: the content namespace of a client stream is jabber:client.
  if (prefix === "" || attrValue(tag, "xmlns") !== NS_CLIENT)
    throw new SplitError("invalid-namespace", `the content namespace is ${NS_CLIENT}`);
  const prefixes = new Map<string, string>();
  let open = `<open xmlns="${NS_FRAMING}"`;
  for (const a of tag.attrs) {
    // The stream prefix too: a client may send <stream:error/> before it closes (§4.9).
    if (a.name.startsWith("xmlns:"))
      prefixes.set(a.name.slice(6), ` ${a.name}=${a.quote}${a.value}${a.quote}`);
    if (OPEN_ATTRIBUTES.has(a.name)) open += ` ${a.name}=${a.quote}${a.value}${a.quote}`;
  }
  return { open: open + "/>", prefixes };
}

/**
 * A top-level element of the stream as a self-contained frame: the default namespace
 * (jabber:client) and any prefix of the header it uses are declared on it unless it declares
 * them itself.
 */
export function inheritNamespaces(xml: string, stream: ClientStream): string {
  const tag = readStartTag(xml);
  const declared = new Set(tag.attrs.map((a) => a.name));
  let added = declared.has("xmlns") ? "" : ` xmlns="${NS_CLIENT}"`;
  for (const [prefix, declaration] of stream.prefixes)
    if (!declared.has(`xmlns:${prefix}`) && xml.includes(`${prefix}:`)) added += declaration;
  return added === "" ? xml : xml.slice(0, tag.nameEnd) + added + xml.slice(tag.nameEnd);
}

/** RFC 7395 §3.6: the client ended its stream. */
export const CLIENT_CLOSE_FRAME = `<close xmlns="${NS_FRAMING}"/>`;

/** RFC 6120 §11.5: an XML declaration may precede each stream header. */
const XML_DECLARATION = "<?xml version='1.0'?>";
const STREAM_END = "</stream:stream>";

/**
 * A frame from the session (or a canned one from the edge) as bytes of the TCP stream: an
 * `<open/>` becomes the server's stream header, a `<close/>` the stream's end tag.
 */
export function frameToStream(frame: string): string {
  if (frame.startsWith("<open ")) return openToHeader(frame);
  if (frame.startsWith("<close ")) return STREAM_END;
  return frame;
}

function openToHeader(frame: string): string {
  const tag = readStartTag(frame);
  let header =
    `${XML_DECLARATION}<stream:stream xmlns="${NS_CLIENT}"` + ` xmlns:stream="${NS_STREAMS}"`;
  for (const a of tag.attrs)
    if (a.name !== "xmlns") header += ` ${a.name}=${a.quote}${a.value}${a.quote}`;
  return header + ">";
}
