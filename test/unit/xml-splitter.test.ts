import { strict as assert } from "node:assert";
import {
  SplitError,
  XmlSplitter,
  type SplitErrorCondition,
  type SplitEvent,
} from "../../services/edge/tcp/xml-splitter.js";
import {
  frameToStream,
  inheritNamespaces,
  readClientHeader,
} from "../../services/edge/tcp/stream-framing.js";

const MAX = 10000;
const HEADER =
  "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xml:lang='en'" +
  " xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
const MESSAGE =
  `<message to='bob@localhost' type='chat' id="q&quot;1"><body>h\u00e9llo \u263a \u{1f600}` +
  `<![CDATA[ <not> a </tag> ]]></body><x:y xmlns:x='urn:x' x:a='>'/></message>`;
const STREAM = `${HEADER}\n<presence/> ${MESSAGE}\r\n\t<iq type="get" id="p"><ping xmlns="urn:xmpp:ping"/></iq></stream:stream>`;

/** Feeds `chunks` to a fresh splitter and returns every event. */
function split(chunks: Buffer[], max = MAX): SplitEvent[] {
  const splitter = new XmlSplitter(max);
  const events: SplitEvent[] = [];
  for (const chunk of chunks) {
    const used = splitter.push(chunk, (e) => void events.push(e));
    assert.equal(used, chunk.length);
  }
  return events;
}

function splitText(text: string, max = MAX): SplitEvent[] {
  return split([Buffer.from(text, "utf8")], max);
}

function rejects(text: string, condition: SplitErrorCondition, max = MAX): void {
  assert.throws(
    () => splitText(text, max),
    (err: unknown) => err instanceof SplitError && err.condition === condition,
    `${condition} expected for ${JSON.stringify(text.slice(0, 100))}`,
  );
}

const EXPECTED: SplitEvent[] = [
  { kind: "header", tag: HEADER.slice(HEADER.indexOf("<stream:stream")) },
  { kind: "element", xml: "<presence/>" },
  { kind: "element", xml: MESSAGE },
  { kind: "element", xml: '<iq type="get" id="p"><ping xmlns="urn:xmpp:ping"/></iq>' },
  { kind: "close" },
];

describe("XmlSplitter (RFC 6120 stream over TCP)", () => {
  it("cuts a stream into its header, top-level elements and end, skipping white space", () => {
    assert.deepEqual(splitText(STREAM), EXPECTED);
  });

  it("gives the same events whatever the chunk boundaries, inside UTF-8 characters too", () => {
    const bytes = Buffer.from(STREAM, "utf8");
    // Every single cut point, then every byte on its own.
    for (let cut = 1; cut < bytes.length; cut++)
      assert.deepEqual(
        split([bytes.subarray(0, cut), bytes.subarray(cut)]),
        EXPECTED,
        `cut ${cut}`,
      );
    const single = [...bytes].map((b) => Buffer.from([b]));
    assert.deepEqual(split(single), EXPECTED);
  });

  it("accepts a restart: a new XML declaration and header in the same stream", () => {
    const events = splitText(`${HEADER}<a xmlns='urn:a'/>${HEADER}<b/>`);
    assert.deepEqual(
      events.map((e) => e.kind),
      ["header", "element", "header", "element"],
    );
  });

  it("stops where the handler says (the rest belongs to TLS after <starttls/>)", () => {
    const splitter = new XmlSplitter(MAX);
    const text = `${HEADER}<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\x16\x03\x01binary`;
    const bytes = Buffer.from(text, "latin1");
    const events: SplitEvent[] = [];
    const used = splitter.push(bytes, (e) => {
      events.push(e);
      return e.kind !== "element";
    });
    assert.equal(used, text.indexOf("\x16"));
    assert.equal(events.length, 2);
  });

  it("refuses comments, processing instructions and DTDs (RFC 6120 §11.1)", () => {
    rejects(`${HEADER}<message><!-- hi --></message>`, "restricted-xml");
    rejects(`${HEADER}<!-- hi -->`, "restricted-xml");
    rejects(`${HEADER}<message><?pi data?></message>`, "restricted-xml");
    rejects(`${HEADER}<?pi data?>`, "restricted-xml");
    rejects(`<?xml-stylesheet href='x'?>${HEADER}`, "restricted-xml");
    rejects(`<!DOCTYPE lol [<!ENTITY lol "lol">]>${HEADER}`, "restricted-xml");
    rejects(`${HEADER}<message><!ENTITY x "y"></message>`, "restricted-xml");
  });

  it("refuses malformed XML with not-well-formed", () => {
    rejects(`${HEADER}hello`, "not-well-formed"); // text outside any element
    rejects(`<message/>`, "not-well-formed"); // no stream header
    rejects(`</stream:stream>`, "not-well-formed"); // end without start
    rejects(`${HEADER}</other>`, "not-well-formed");
    // A mismatched end tag is refused when it comes, though the element is not complete.
    rejects(`${HEADER}<message><body>x</message>`, "not-well-formed");
    rejects(`${HEADER}<message a='<'/>`, "not-well-formed");
    rejects(`${HEADER}< message/>`, "not-well-formed");
    rejects(`${HEADER}<![CDATA[x]]>`, "not-well-formed");
    rejects(`${HEADER}<m><![CDAT[x]]></m>`, "not-well-formed");
    rejects(`<?xml version='1.0'?><message/>`, "not-well-formed");
    // Invalid UTF-8 (a lone continuation byte, an overlong form) inside an element.
    assert.throws(
      () =>
        split([Buffer.from(HEADER), Buffer.from([0x3c, 0x61, 0x3e, 0x80, 0x3c, 0x2f, 0x61, 0x3e])]),
      (err: unknown) => err instanceof SplitError && err.condition === "not-well-formed",
    );
    assert.throws(
      () =>
        split([
          Buffer.from(HEADER),
          Buffer.from([0x3c, 0x61, 0x3e, 0xc0, 0xaf, 0x3c, 0x2f, 0x61, 0x3e]),
        ]),
      (err: unknown) => err instanceof SplitError && err.condition === "not-well-formed",
    );
  });

  it("bounds what it buffers: an element past maxBytes is a policy-violation, even unfinished", () => {
    const max = 10000;
    const body = "x".repeat(max);
    rejects(`${HEADER}<message><body>${body}</body></message>`, "policy-violation", max);
    // Never completed: refused as soon as the bound is passed, not when it ends.
    const splitter = new XmlSplitter(max);
    splitter.push(Buffer.from(`${HEADER}<message><body>`), () => undefined);
    const chunk = Buffer.from("y".repeat(1000));
    assert.throws(
      () => {
        for (let i = 0; i < 20; i++) splitter.push(chunk, () => undefined);
      },
      (err: unknown) => err instanceof SplitError && err.condition === "policy-violation",
    );
    // A header is bounded too.
    rejects(`<stream:stream ${"a='b' ".repeat(3000)}>`, "policy-violation", max);
    // Exactly at the bound passes.
    const stanza = `<m>${"z".repeat(max - 7)}</m>`;
    assert.equal(Buffer.byteLength(stanza), max);
    assert.deepEqual(splitText(`${HEADER}${stanza}`, max)[1], { kind: "element", xml: stanza });
    rejects(`${HEADER}<m>${"z".repeat(max - 6)}</m>`, "policy-violation", max);
  });
});

describe("stream framing (TCP stream <-> RFC 7395 frames)", () => {
  it("turns a client header into <open/> and refuses the wrong namespaces", () => {
    const stream = readClientHeader(HEADER.slice(HEADER.indexOf("<stream:stream")));
    assert.equal(
      stream.open,
      `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to='localhost' version='1.0' xml:lang='en'/>`,
    );
    const bad = (tag: string, condition: SplitErrorCondition) =>
      assert.throws(
        () => readClientHeader(tag),
        (err: unknown) => err instanceof SplitError && err.condition === condition,
      );
    bad("<stream:stream xmlns='jabber:client'>", "bad-namespace-prefix");
    bad("<stream:stream xmlns='jabber:client' xmlns:stream='urn:other'>", "invalid-namespace");
    bad(
      "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>",
      "invalid-namespace",
    );
  });

  it("gives top-level elements the namespaces they inherit, unless they declare them", () => {
    const stream = readClientHeader(
      "<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' xmlns:x='urn:x'>",
    );
    assert.equal(
      inheritNamespaces("<message to='a'><body>x</body></message>", stream),
      `<message xmlns="jabber:client" to='a'><body>x</body></message>`,
    );
    assert.equal(inheritNamespaces("<presence/>", stream), `<presence xmlns="jabber:client"/>`);
    assert.equal(
      inheritNamespaces("<r xmlns='urn:xmpp:sm:3'/>", stream),
      "<r xmlns='urn:xmpp:sm:3'/>",
    );
    assert.equal(
      inheritNamespaces("<s:error><bad-format/></s:error>", stream),
      `<s:error xmlns="jabber:client" xmlns:s='http://etherx.jabber.org/streams'><bad-format/></s:error>`,
    );
    assert.equal(
      inheritNamespaces("<message><x:y/></message>", stream),
      `<message xmlns="jabber:client" xmlns:x='urn:x'><x:y/></message>`,
    );
  });

  it("writes the session's <open/> as a stream header and <close/> as the stream's end", () => {
    assert.equal(
      frameToStream(
        '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="localhost" id="abc" version="1.0" xml:lang="en"/>',
      ),
      `<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" from="localhost" id="abc" version="1.0" xml:lang="en">`,
    );
    assert.equal(
      frameToStream('<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>'),
      "</stream:stream>",
    );
    const stanza = '<message xmlns="jabber:client"><body>x</body></message>';
    assert.equal(frameToStream(stanza), stanza);
  });
});
