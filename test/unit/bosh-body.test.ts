// BOSH bodies (XEP-0124 §7): the start tag the edge reads (edge/bosh/body-start-tag.ts), the
// whole body the session reads and the bodies it writes (session/io/bosh/bosh-body.ts), the
// sid (shared/bosh-sid.ts) and the edge's CORS policy.
import assert from "node:assert/strict";
import { readBodyStart } from "../../services/edge/bosh/body-start-tag.js";
import { corsHeaders, parseCorsOrigins } from "../../services/edge/bosh/cors.js";
import { parseSid, sidOf } from "../../services/shared/bosh-sid.js";
import {
  BoshError,
  negotiatedVersion,
  parseBoshBody,
  responseBody,
  startTagAttr,
  terminateBody,
} from "../../services/session/io/bosh/bosh-body.js";

const NS = "http://jabber.org/protocol/httpbind";
const SID = sidOf("e1.3.abc", "s3cret-_x");

describe("BOSH bodies", () => {
  describe("the start tag the edge reads", () => {
    it("reads rid (normalized) and the connection the sid names", () => {
      assert.deepEqual(readBodyStart(`<body xmlns="${NS}" rid="0042"/>`), { rid: "42" });
      assert.deepEqual(
        readBodyStart(
          `<?xml version="1.0"?>\n<body rid='7' sid='${SID}' xmlns='${NS}'><x/></body>`,
        ),
        { rid: "7", connId: "e1.3.abc" },
      );
    });

    it("refuses what is not a BOSH body", () => {
      for (const xml of [
        "",
        "<html/>",
        `<body rid="1"/>`, // no namespace
        `<body xmlns="urn:other" rid="1"/>`,
        `<body xmlns="${NS}"/>`, // no rid
        `<body xmlns="${NS}" rid="0"/>`,
        `<body xmlns="${NS}" rid="-1"/>`,
        `<body xmlns="${NS}" rid="99999999999999999"/>`, // not exact in a double
        `<body xmlns="${NS}" rid="1" rid="2"/>`,
        `<body xmlns="${NS}" rid="1" sid="nosecret"/>`,
        `<body xmlns="${NS}" rid="1" sid="bad~x"/>`, // not a connection id
        `<body xmlns="${NS}" rid="1">`, // not closed
        `<body xmlns="${NS}" rid="1"/><body/>`,
        `<bodyx xmlns="${NS}" rid="1"/>`,
        `<body xmlns="${NS}" ${"a".repeat(5000)}="1" rid="1"/>`,
      ])
        assert.equal(readBodyStart(xml), undefined, xml.slice(0, 60));
    });
  });

  describe("the body the session reads", () => {
    it("reads the creation attributes, whatever prefix names the xbosh namespace", () => {
      const request = parseBoshBody(
        `<body xmlns="${NS}" rid="10" to="localhost" wait="60" hold="1" ver="1.6" ack="1" xmlns:x="urn:xmpp:xbosh" x:restart="true"/>`,
        10000,
      );
      assert.deepEqual(request, {
        rid: 10,
        terminate: false,
        restart: true,
        payloads: [],
        wait: 60,
        hold: 1,
        to: "localhost",
        ver: "1.6",
        ack: 1,
      });
    });

    it("gives each child as a frame, a stanza with no namespace in jabber:client", () => {
      const request = parseBoshBody(
        `<body xmlns="${NS}" rid="11" sid="${SID}" type="terminate"><message to="a@b"><body>hi</body></message><r xmlns="urn:xmpp:sm:3"/></body>`,
        10000,
      );
      assert.equal(request.sid, SID);
      assert.equal(request.terminate, true);
      assert.deepEqual(request.payloads, [
        `<message to="a@b" xmlns="jabber:client"><body>hi</body></message>`,
        `<r xmlns="urn:xmpp:sm:3"/>`,
      ]);
    });

    it("says bad-request for what is not well formed, policy-violation past the size", () => {
      const bad = (xml: string, condition: string) =>
        assert.throws(
          () => parseBoshBody(xml, 200),
          (err: unknown) => err instanceof BoshError && err.condition === condition,
          xml,
        );
      bad(`<body xmlns="${NS}" rid="1"><message></body>`, "bad-request");
      bad(`<body xmlns="${NS}" rid="x"/>`, "bad-request");
      bad(`<body xmlns="urn:x" rid="1"/>`, "bad-request");
      bad(`<body xmlns="${NS}" rid="1"><m>${"x".repeat(300)}</m></body>`, "policy-violation");
    });
  });

  it("reads rid and sid of a body that is not well formed, to answer it", () => {
    const broken = `<body xmlns="${NS}" rid="12" sid="${SID}"><message></body>`;
    assert.equal(startTagAttr(broken, "rid"), "12");
    assert.equal(startTagAttr(broken, "sid"), SID);
    assert.equal(startTagAttr(`<body xmlns="${NS}" rid="12">`, "sid"), undefined);
  });

  describe("the bodies the session writes", () => {
    it("writes attributes escaped around serialized frames", () => {
      assert.equal(
        responseBody({ sid: `a"<b` }, ["<x/>"]),
        `<body xmlns="${NS}" xmlns:stream="http://etherx.jabber.org/streams" sid="a&quot;&lt;b"><x/></body>`,
      );
      assert.equal(
        terminateBody("remote-stream-error", ["<stream:error/>"]),
        `<body xmlns="${NS}" xmlns:stream="http://etherx.jabber.org/streams" type="terminate" condition="remote-stream-error"><stream:error/></body>`,
      );
    });

    it("answers the client's version when lower than ours", () => {
      assert.equal(negotiatedVersion("1.6"), "1.6");
      assert.equal(negotiatedVersion("1.12"), "1.11");
      assert.equal(negotiatedVersion(undefined), "1.11");
      assert.equal(negotiatedVersion("x"), "1.11");
    });
  });

  it("a sid names its connection and keeps its secret", () => {
    assert.deepEqual(parseSid(SID), { connId: "e1.3.abc", secret: "s3cret-_x" });
    assert.equal(parseSid("e1.3.abc~"), undefined);
    assert.equal(parseSid("~x"), undefined);
  });

  it("CORS: none by default, any origin with *, or listed origins only", () => {
    assert.deepEqual(corsHeaders(parseCorsOrigins(""), "https://a.example", false), []);
    assert.deepEqual(corsHeaders(parseCorsOrigins("*"), "https://a.example", false), [
      ["Access-Control-Allow-Origin", "*"],
    ]);
    const list = parseCorsOrigins("https://a.example/, https://b.example");
    assert.deepEqual(corsHeaders(list, "https://b.example", false), [
      ["Access-Control-Allow-Origin", "https://b.example"],
      ["Vary", "Origin"],
    ]);
    assert.deepEqual(corsHeaders(list, "https://evil.example", true), []);
    assert.ok(
      corsHeaders(list, "https://a.example", true).some(
        ([name]) => name === "Access-Control-Allow-Methods",
      ),
    );
  });
});
