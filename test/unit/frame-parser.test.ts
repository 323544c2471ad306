import { strict as assert } from "node:assert";
import { MAX_FRAME_DEPTH, parseFrame } from "../../services/session/core/frame-parser.js";
import { StreamError, type StreamErrorCondition } from "../../services/shared/xmpp-errors.js";

const MAX = 64 * 1024;

function rejects(xml: string, condition: StreamErrorCondition, maxBytes = MAX): void {
  assert.throws(
    () => parseFrame(xml, maxBytes),
    (err: unknown) => err instanceof StreamError && err.condition === condition,
    `${condition} expected for ${JSON.stringify(xml.slice(0, 80))}`,
  );
}

describe("parseFrame", () => {
  it("parses a stanza with namespaces, attributes, escapes and parent links", () => {
    const el = parseFrame(
      `<message xmlns="jabber:client" to="juliet@example.com" type="chat" id="a&amp;b">` +
        `<body>Wherefore &lt;art&gt; thou &#x263A; &#9731;</body>` +
        `<x:data xmlns:x="urn:example:x" x:flag="1"/></message>`,
      MAX,
    );
    assert.equal(el.name, "message");
    assert.equal(el.getNS(), "jabber:client");
    assert.equal(el.attrs.id, "a&b");
    const body = el.getChild("body");
    assert.ok(body);
    assert.equal(body.parent, el);
    assert.equal(body.getNS(), "jabber:client");
    assert.equal(body.getText(), "Wherefore <art> thou \u263a \u2603");
    const data = el.getChildElements()[1];
    assert.equal(data?.getNS(), "urn:example:x");
    assert.equal(data?.parent, el);
  });

  it("parses RFC 7395 framing elements and tolerates surrounding whitespace", () => {
    const open = parseFrame(
      ` <open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.com" version="1.0"/>\n`,
      MAX,
    );
    assert.equal(open.name, "open");
    assert.equal(open.getNS(), "urn:ietf:params:xml:ns:xmpp-framing");
  });

  it("accepts CDATA and keeps text on both sides of it", () => {
    const el = parseFrame(`<body xmlns="jabber:client">a<![CDATA[<b> & ]]>c<i/>d</body>`, MAX);
    assert.equal(el.getText(), "a<b> & cd");
  });

  it("accepts xml:lang without declaring the xml prefix", () => {
    assert.equal(parseFrame(`<a xmlns="x" xml:lang="en"/>`, MAX).attrs["xml:lang"], "en");
  });

  it("accepts nesting up to MAX_FRAME_DEPTH", () => {
    const xml = "<a>".repeat(MAX_FRAME_DEPTH) + "</a>".repeat(MAX_FRAME_DEPTH);
    assert.equal(parseFrame(xml, MAX).name, "a");
  });

  describe("restricted XML (RFC 6120 §11.1)", () => {
    it("rejects a DOCTYPE", () => rejects(`<!DOCTYPE message><message/>`, "restricted-xml"));

    it("rejects billion laughs before any expansion", () => {
      const entities = Array.from(
        { length: 9 },
        (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`,
      ).join("");
      rejects(
        `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">${entities}]><lolz>&lol9;</lolz>`,
        "restricted-xml",
      );
      rejects(
        `<!DOCTYPE lolz [<!ENTITY lol0 "lol">${entities}]><lolz>&lol9;</lolz>`,
        "restricted-xml",
      );
    });

    it("rejects an internal subset even when ltx would swallow what follows", () => {
      rejects(`<!DOCTYPE a [<!ELEMENT a ANY>]><a/>`, "restricted-xml");
      rejects(`<a><!DOCTYPE x></a>`, "restricted-xml");
    });

    it("rejects comments", () => {
      rejects(`<message><!-- hidden --></message>`, "restricted-xml");
      rejects(`<!-- lead --><message/>`, "restricted-xml");
    });

    it("rejects processing instructions and the XML declaration", () => {
      rejects(`<message><?php echo 1; ?></message>`, "restricted-xml");
      rejects(`<?xml version="1.0" encoding="UTF-8"?><message/>`, "restricted-xml");
    });

    it("rejects external and undeclared entity references", () => {
      rejects(`<message><body>&xxe;</body></message>`, "restricted-xml");
      rejects(`<message to="&xxe;"/>`, "restricted-xml");
      rejects(`<message>&nbsp;</message>`, "restricted-xml");
    });

    it("leaves lookalikes inside CDATA alone", () => {
      const el = parseFrame(`<a><![CDATA[<!-- &xxe; <?pi?> <!DOCTYPE>]]></a>`, MAX);
      assert.equal(el.getText(), "<!-- &xxe; <?pi?> <!DOCTYPE>");
    });
  });

  describe("not-well-formed", () => {
    it("rejects mismatched tags", () => {
      rejects(`<message><body></message></body>`, "not-well-formed");
      rejects(`<a><b></c></a>`, "not-well-formed");
    });

    it("rejects unclosed elements and stray end tags", () => {
      rejects(`<message><body>hi</body>`, "not-well-formed");
      rejects(`<a/></a>`, "not-well-formed");
    });

    it("rejects two top-level elements", () => {
      rejects(`<message/><presence/>`, "not-well-formed");
    });

    it("rejects text outside the element, before or after", () => {
      rejects(`junk<message/>`, "not-well-formed");
      rejects(`<message/>junk`, "not-well-formed");
      rejects(`<message/>&amp;`, "not-well-formed");
    });

    it("rejects an empty or whitespace-only frame", () => {
      rejects(``, "not-well-formed");
      rejects(` \n`, "not-well-formed");
    });

    it("rejects characters outside XML 1.0, raw or as references", () => {
      rejects(`<a>\u0000</a>`, "not-well-formed");
      rejects(`<a>\u0008</a>`, "not-well-formed");
      rejects(`<a x="\u000b"/>`, "not-well-formed");
      rejects(`<a>\u001f</a>`, "not-well-formed");
      rejects(`<a>\uffff</a>`, "not-well-formed");
      rejects(`<a>\ud800</a>`, "not-well-formed");
      rejects(`<a>\udc00x</a>`, "not-well-formed");
      rejects(`<a>&#0;</a>`, "not-well-formed");
      rejects(`<a>&#x1;</a>`, "not-well-formed");
      rejects(`<a>&#xFFFE;</a>`, "not-well-formed");
      rejects(`<a>&#99999999999;</a>`, "not-well-formed");
    });

    it("accepts astral characters as surrogate pairs and references", () => {
      assert.equal(parseFrame(`<a>\u{1f600}&#x1F600;</a>`, MAX).getText(), "\u{1f600}\u{1f600}");
    });

    it("rejects a bare ampersand and malformed references", () => {
      rejects(`<a>fish & chips</a>`, "not-well-formed");
      rejects(`<a>&#;</a>`, "not-well-formed");
      rejects(`<a>&amp</a>`, "not-well-formed");
    });

    it("rejects malformed tags and attributes", () => {
      rejects(`< a/>`, "not-well-formed");
      rejects(`<a b/>`, "not-well-formed");
      rejects(`<a b=c/>`, "not-well-formed");
      rejects(`<a b="1"c="2"/>`, "not-well-formed");
      rejects(`<a b="<"/>`, "not-well-formed");
      rejects(`<a b="1/>`, "not-well-formed");
      rejects(`<1a/>`, "not-well-formed");
      rejects(`<a></a b="1">`, "not-well-formed");
      rejects(`<a>]]></a>`, "not-well-formed");
      rejects(`<a><![CDATA[never closed</a>`, "not-well-formed");
    });

    it("rejects duplicate attributes, literally or by expanded name", () => {
      rejects(`<a x="1" x="2"/>`, "not-well-formed");
      rejects(`<a xmlns:p="urn:n" xmlns:q="urn:n" p:x="1" q:x="2"/>`, "not-well-formed");
    });

    it("rejects unbound and reserved namespace prefixes (XML-NAMES, RFC 6120 §4.9.3.13)", () => {
      rejects(`<foo:bar/>`, "not-well-formed");
      rejects(`<a foo:x="1"/>`, "not-well-formed");
      rejects(`<a xmlns:p=""/>`, "not-well-formed");
      rejects(`<xmlns:a/>`, "not-well-formed");
      rejects(`<a xmlns:xml="urn:other"/>`, "not-well-formed");
      rejects(`<a:b:c xmlns:a="urn:a"/>`, "not-well-formed");
      rejects(`<p:x xmlns:p="urn:p"><p:y/></q:x>`, "not-well-formed");
    });

    it("resolves prefixes declared on ancestors", () => {
      const el = parseFrame(`<s:a xmlns:s="urn:s"><s:b><s:c/></s:b></s:a>`, MAX);
      assert.equal(el.getChildElements()[0]?.getChildElements()[0]?.getNS(), "urn:s");
    });
  });

  it("rejects attribute names ltx cannot hold with bad-format", () => {
    rejects(`<a __proto__="x"/>`, "bad-format");
    rejects(`<a hasOwnProperty="x"/>`, "bad-format");
    rejects(`<a constructor="x"/>`, "bad-format");
  });

  describe("policy-violation", () => {
    it("rejects a frame over maxBytes, counted in UTF-8 bytes", () => {
      rejects(`<a>${"x".repeat(100)}</a>`, "policy-violation", 100);
      rejects(`<a>${"\u00e9".repeat(40)}</a>`, "policy-violation", 80);
      assert.equal(parseFrame(`<a>${"x".repeat(93)}</a>`, 100).name, "a");
    });

    it("rejects oversize before looking at the content", () => {
      rejects(`<!DOCTYPE x>${"x".repeat(200)}`, "policy-violation", 100);
    });

    it("rejects nesting beyond MAX_FRAME_DEPTH", () => {
      const depth = MAX_FRAME_DEPTH + 1;
      rejects("<a>".repeat(depth) + "</a>".repeat(depth), "policy-violation");
    });
  });
});
