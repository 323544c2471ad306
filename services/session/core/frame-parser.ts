// RFC 7395 §3.3.3 (one WebSocket message holds one complete top-level element) checked against
// RFC 6120 §11.1 (restricted XML), §11.6 (UTF-8) and §4.9.3 (stream error conditions).
//
// ltx is lenient in ways that matter for untrusted input: it silently skips DOCTYPEs, comments
// and processing instructions, ignores mismatched end tags, keeps the last of duplicate attributes
// and drops text that follows a CDATA section. So a strict lexical pass runs first and ltx only
// builds the tree from input that pass has accepted.
import { Element, escapeXMLText } from "ltx";
import SaxLtx from "ltx/src/parsers/ltx.js";
import { StreamError } from "../../shared/xmpp-errors.js";

/** Deepest element nesting accepted in one frame; stanzas in practice stay below ten. */
export const MAX_FRAME_DEPTH = 64;

const XML_NS = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NS = "http://www.w3.org/2000/xmlns/";
const PREDEFINED_ENTITIES = new Set(["amp", "lt", "gt", "quot", "apos"]);

// XML 1.0 (5th ed.) §2.3 NameStartChar / NameChar.
const NAME_START =
  ":A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF" +
  "\\u200C\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD" +
  "\\u{10000}-\\u{EFFFF}";
const NAME = `[${NAME_START}][${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F\\u2040]*`;
const NAME_AT = new RegExp(NAME, "uy");
const END_TAG_AT = new RegExp(`</${NAME}[ \\t\\r\\n]*>`, "uy");
const REF_AT = new RegExp(`&(?:#([0-9]+)|#x([0-9A-Fa-f]+)|(${NAME}));`, "uy");
const NCNAME_START = new RegExp(`^[${NAME_START.slice(1)}]`, "u");
const WHITESPACE_ONLY = /^[ \t\r\n]*$/;
// XML 1.0 §2.2 Char, checked on UTF-16 code units: C0 controls other than tab/LF/CR, the two
// noncharacters U+FFFE/U+FFFF, and any surrogate that is not half of a pair.
const ILLEGAL_CHAR = new RegExp(
  "[\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\uFFFE\\uFFFF]" +
    "|[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]",
);

// Error texts go back to the client, so they name the rule broken and never echo its input.
function notWellFormed(text: string): StreamError {
  return new StreamError("not-well-formed", text);
}

function restricted(text: string): StreamError {
  return new StreamError("restricted-xml", text);
}

/**
 * Parses one RFC 7395 WebSocket text message into an ltx tree with parent links.
 * Throws StreamError: policy-violation (too large or too deep), restricted-xml (RFC 6120 §11.1),
 * not-well-formed (XML 1.0 or Namespaces in XML violations) or bad-format (an attribute named
 * like an Object.prototype member, which ltx cannot hold). A whitespace-only message has no
 * element and is not-well-formed; callers that tolerate whitespace keepalives skip those first.
 */
export function parseFrame(text: string, maxBytes: number): Element {
  // Checked before any scanning so an oversized frame costs one length pass.
  if (Buffer.byteLength(text, "utf8") > maxBytes) {
    throw new StreamError("policy-violation", `frame exceeds ${maxBytes} bytes`);
  }
  if (ILLEGAL_CHAR.test(text)) throw notWellFormed("character not allowed in XML 1.0");
  return buildTree(lex(text));
}

/**
 * The strict lexical pass. Rejects what ltx would skip or misread and returns the text to hand
 * to ltx, with CDATA sections rewritten as escaped text because ltx loses text that follows one.
 * It also tracks depth, because ltx never reports text after the last tag.
 */
function lex(text: string): string {
  let out = "";
  let copied = 0;
  let depth = 0;
  let pos = 0;
  while (pos < text.length) {
    const lt = text.indexOf("<", pos);
    const end = lt === -1 ? text.length : lt;
    checkCharData(text, pos, end, depth === 0);
    if (lt === -1) break;
    if (text.startsWith("<![CDATA[", lt)) {
      const close = text.indexOf("]]>", lt + 9);
      if (depth === 0 || close === -1) throw notWellFormed("misplaced or unterminated CDATA");
      out += text.slice(copied, lt) + escapeXMLText(text.slice(lt + 9, close));
      copied = pos = close + 3;
    } else if (text.startsWith("<?", lt)) {
      // RFC 6120 §11.1 bans processing instructions. RFC 7395 §3.3.3 frames are bare elements
      // whose first character is "<"; an XML declaration (lexically a PI) has nothing to say in
      // them, since a WebSocket text message is UTF-8 by definition, so it is refused alike.
      throw restricted("processing instruction or XML declaration");
    } else if (text.startsWith("<!", lt)) {
      // Comments, DOCTYPE (and so internal subsets and entity declarations), ELEMENT, ATTLIST...
      throw restricted(text.startsWith("<!--", lt) ? "comment" : "DTD markup");
    } else if (text.startsWith("</", lt)) {
      END_TAG_AT.lastIndex = lt;
      if (!END_TAG_AT.test(text)) throw notWellFormed("malformed end tag");
      if (--depth < 0) throw notWellFormed("end tag without start tag");
      pos = END_TAG_AT.lastIndex;
    } else {
      const tag = scanStartTag(text, lt);
      if (!tag.selfClosing) depth++;
      pos = tag.next;
    }
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/** Character data between tags: references must be legal, and outside the root only whitespace. */
function checkCharData(text: string, start: number, end: number, outsideRoot: boolean): void {
  if (start >= end) return;
  checkReferences(text, start, end);
  const data = text.slice(start, end);
  if (outsideRoot && !WHITESPACE_ONLY.test(data)) throw notWellFormed("text outside the element");
  if (data.includes("]]>")) throw notWellFormed("']]>' in character data");
}

function checkReferences(text: string, start: number, end: number): void {
  // Searching a slice keeps each search inside its own text run, so the work stays linear.
  const run = text.slice(start, end);
  for (let amp = run.indexOf("&"); amp !== -1; amp = run.indexOf("&", amp + 1)) {
    REF_AT.lastIndex = start + amp;
    const ref = REF_AT.exec(text);
    if (!ref || REF_AT.lastIndex > end) throw notWellFormed("bare '&' or malformed reference");
    const [, dec, hex, entity] = ref;
    if (entity !== undefined) {
      // Without a DTD nothing could define it; refusing here also rules out billion laughs.
      if (!PREDEFINED_ENTITIES.has(entity)) throw restricted("entity reference");
      continue;
    }
    const code = dec !== undefined ? parseInt(dec, 10) : parseInt(hex ?? "", 16);
    if (!isXmlChar(code)) throw notWellFormed("character reference to a non-XML character");
  }
}

function isXmlChar(code: number): boolean {
  return (
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}

/** XML 1.0 §3.1 STag / EmptyElemTag, with the attribute checks ltx does not make. */
function scanStartTag(text: string, lt: number): { next: number; selfClosing: boolean } {
  NAME_AT.lastIndex = lt + 1;
  if (!NAME_AT.test(text)) throw notWellFormed("malformed start tag");
  let pos = NAME_AT.lastIndex;
  const seen = new Set<string>();
  for (;;) {
    const beforeSpace = pos;
    pos = skipSpace(text, pos);
    if (text[pos] === ">") return { next: pos + 1, selfClosing: false };
    if (text.startsWith("/>", pos)) return { next: pos + 2, selfClosing: true };
    NAME_AT.lastIndex = pos;
    const name = NAME_AT.exec(text)?.[0];
    if (name === undefined || pos === beforeSpace) throw notWellFormed("malformed attribute");
    if (seen.has(name)) throw notWellFormed("duplicate attribute");
    // ltx keeps attributes in a plain object: "__proto__" would vanish and "hasOwnProperty"
    // breaks Element#getAttr. Well-formed but unprocessable, which is RFC 6120 §4.9.3.1 bad-format.
    if (name in Object.prototype) throw new StreamError("bad-format", "reserved attribute name");
    seen.add(name);
    pos = skipSpace(text, NAME_AT.lastIndex);
    if (text[pos] !== "=") throw notWellFormed("attribute without value");
    pos = skipSpace(text, pos + 1);
    const quote = text[pos];
    const close = quote === '"' || quote === "'" ? text.indexOf(quote, pos + 1) : -1;
    if (close === -1) throw notWellFormed("unquoted or unterminated attribute value");
    if (text.slice(pos + 1, close).includes("<")) throw notWellFormed("'<' in attribute value");
    checkReferences(text, pos + 1, close);
    pos = close + 1;
  }
}

function skipSpace(text: string, pos: number): number {
  while (pos < text.length && " \t\r\n".includes(text[pos] ?? "")) pos++;
  return pos;
}

/** Builds the tree from ltx's SAX events, checking what needs the element stack. */
function buildTree(xml: string): Element {
  const parser = new SaxLtx();
  const stack: Element[] = [];
  let root: Element | undefined;

  parser.on("startElement", (name: string, attrs: Record<string, string>) => {
    const parent = stack.at(-1);
    if (!parent && root) throw notWellFormed("more than one top-level element");
    if (stack.length >= MAX_FRAME_DEPTH) {
      throw new StreamError("policy-violation", `elements nested deeper than ${MAX_FRAME_DEPTH}`);
    }
    const element = new Element(name, attrs);
    if (parent) parent.cnode(element);
    else root = element;
    checkNamespaces(element);
    stack.push(element);
  });
  parser.on("endElement", (name: string) => {
    if (stack.pop()?.name !== name) throw notWellFormed("mismatched end tag");
  });
  parser.on("text", (str: string) => {
    const parent = stack.at(-1);
    if (parent) parent.t(str);
    else if (!WHITESPACE_ONLY.test(str)) throw notWellFormed("text outside the element");
  });
  parser.on("error", () => {
    throw notWellFormed("parse error");
  });

  try {
    parser.write(xml);
    parser.end();
  } catch (err) {
    if (err instanceof StreamError) throw err;
    throw notWellFormed("parse error");
  }
  if (!root) throw notWellFormed("no element");
  if (stack.length > 0) throw notWellFormed("unclosed element");
  return root;
}

/**
 * Namespaces in XML 1.0 constraints. An unbound prefix is reported as not-well-formed rather
 * than invalid-namespace or bad-namespace-prefix: RFC 6120 §4.9.3.13 defines not-well-formed as
 * violating "[XML] or [XML-NAMES]", while the other two concern the stream and content namespaces.
 */
function checkNamespaces(element: Element): void {
  const [elementPrefix] = splitQName(element.name);
  if (elementPrefix === "xmlns") throw notWellFormed("element uses the reserved prefix xmlns");
  if (elementPrefix !== undefined) resolvePrefix(element, elementPrefix);

  const expandedNames = new Set<string>();
  for (const [attr, value] of Object.entries(element.attrs)) {
    const [prefix, local] = splitQName(attr);
    if (prefix === "xmlns") {
      if (local === "xmlns" || value === "" || value === XMLNS_NS) {
        throw notWellFormed("illegal namespace declaration");
      }
      if ((local === "xml") !== (value === XML_NS)) throw notWellFormed("misbound xml prefix");
    } else if (attr === "xmlns") {
      if (value === XML_NS || value === XMLNS_NS) throw notWellFormed("reserved default namespace");
    } else if (prefix !== undefined) {
      const expanded = `${resolvePrefix(element, prefix)} ${local}`;
      if (expandedNames.has(expanded)) throw notWellFormed("duplicate attribute");
      expandedNames.add(expanded);
    }
  }
}

function splitQName(name: string): [prefix: string | undefined, local: string] {
  const colon = name.indexOf(":");
  if (colon === -1) return [undefined, name];
  const local = name.slice(colon + 1);
  if (colon === 0 || local.includes(":") || !NCNAME_START.test(local)) {
    throw notWellFormed("malformed qualified name");
  }
  return [name.slice(0, colon), local];
}

function resolvePrefix(element: Element, prefix: string): string {
  if (prefix === "xml") return XML_NS;
  const attr = `xmlns:${prefix}`;
  for (let el: Element | null = element; el; el = el.parent) {
    if (Object.hasOwn(el.attrs, attr)) return el.attrs[attr] ?? "";
  }
  throw notWellFormed("unbound namespace prefix");
}
