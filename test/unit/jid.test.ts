import { strict as assert } from "node:assert";
import { Jid, PARSED_JID_CACHE_SIZE, isBareJid, jid, parseJid } from "../../services/shared/jid.js";
import { StanzaError } from "../../services/shared/xmpp-errors.js";

function malformed(s: string): void {
  assert.throws(
    () => parseJid(s),
    (err: unknown) => err instanceof StanzaError && err.condition === "jid-malformed",
    `jid-malformed expected for ${JSON.stringify(s.slice(0, 60))}`,
  );
}

describe("parseJid", () => {
  it("splits full, bare and domain-only JIDs", () => {
    const full = parseJid("juliet@example.com/balcony");
    assert.deepEqual(
      [full.local, full.domain, full.resource],
      ["juliet", "example.com", "balcony"],
    );
    assert.equal(full.toString(), "juliet@example.com/balcony");
    assert.equal(full.bareString(), "juliet@example.com");
    assert.equal(parseJid("example.com").toString(), "example.com");
    assert.equal(parseJid("example.com/res").local, "");
  });

  it("takes the resource from the first '/', so it may hold '@' and '/'", () => {
    const j = parseJid("a@b.example/c@d/e");
    assert.deepEqual([j.local, j.domain, j.resource], ["a", "b.example", "c@d/e"]);
    assert.equal(parseJid("b.example/x@y").local, "");
  });

  it("normalizes: domain lowercase without trailing dot, localpart NFC lowercase, resource NFC", () => {
    const j = parseJid("Ju\u0301liet@Example.COM./Bal\u0301cony");
    assert.equal(j.local, "j\u00faliet");
    assert.equal(j.domain, "example.com");
    assert.equal(j.resource, "Bal\u0301cony".normalize("NFC"));
    assert.equal(j.resource.startsWith("B"), true, "resources keep their case");
  });

  it("rejects empty parts", () => {
    malformed("");
    malformed("@example.com");
    malformed("user@");
    malformed("user@example.com/");
    malformed("/resource");
    malformed(".");
    malformed("user@a..b");
  });

  it("rejects forbidden localpart characters (RFC 7622 §3.3.1)", () => {
    for (const c of ['"', "&", "'", ":", "<", ">", " ", "\u00a0", "\u3000"]) {
      malformed(`us${c}er@example.com`);
    }
    malformed("a@b@example.com");
  });

  it("allows a colon in the domainpart only inside an IPv6 literal (RFC 7622 §3.2)", () => {
    malformed("user@example.com:5222");
    malformed("example.com:5222");
    assert.equal(parseJid("user@[::1]/r").domain, "[::1]");
    assert.equal(parseJid("user@[2001:DB8::1]").domain, "[2001:db8::1]");
  });

  it("rejects control characters anywhere", () => {
    malformed("user\u0000@example.com");
    malformed("user@exam\u0007ple.com");
    malformed("user@example.com/res\u0085");
    malformed("user@example.com/res\u007f");
  });

  it("refuses format characters in every part: bidi controls, joiners, BOM (RFC 8264 §9)", () => {
    for (const c of [
      "\u202e",
      "\u202a",
      "\u200e",
      "\u200f",
      "\u200d",
      "\u200c",
      "\ufeff",
      "\u2066",
      "\u00ad",
    ]) {
      malformed(`us${c}er@example.com`);
      malformed(`user@exa${c}mple.com`);
      malformed(`user@example.com/res${c}ource`);
      malformed(`user@example.com/${c}`);
    }
  });

  it("refuses surrogates, private use, unassigned code points and line separators", () => {
    for (const c of ["\ud800", "\ue000", "\u0378", "\u2028", "\u2029", "\u034f"]) {
      malformed(`user@example.com/r${c}`);
      malformed(`u${c}ser@example.com`);
    }
  });

  it("gives the resourcepart OpaqueString: spaces mapped to U+0020, case and symbols kept", () => {
    const j = parseJid("user@example.com/My\u00a0Phone \u2603 \u05d0");
    assert.equal(j.resource, "My Phone \u2603 \u05d0");
  });

  it("gives the localpart UsernameCaseMapped: width mapping, lowercase, IdentifierClass", () => {
    assert.equal(parseJid("\uff2a\uff55\uff4c\uff49\uff45\uff54@example.com").local, "juliet");
    assert.equal(
      parseJid("\u0416\u0443\u043b\u044c@example.com").local,
      "\u0436\u0443\u043b\u044c",
    );
    assert.equal(parseJid("\u5c0f\u660e@example.com").local, "\u5c0f\u660e");
    // symbols, non-ASCII punctuation and compatibility characters are not identifiers
    for (const local of ["snow\u2603", "a\u00b7b", "\ufb01x", "x\u2460", "\u00bd"])
      malformed(`${local}@example.com`);
  });

  it("applies the bidi rule (RFC 5893) to the localpart and each domain label", () => {
    // all right-to-left, or right-to-left ending in digits: valid
    assert.equal(
      parseJid("\u05e9\u05dc\u05d5\u05dd@example.com").local,
      "\u05e9\u05dc\u05d5\u05dd",
    );
    assert.equal(
      parseJid("\u0645\u062d\u0645\u062f12@example.com").local,
      "\u0645\u062d\u0645\u062f12",
    );
    assert.equal(
      parseJid("user@\u05d3\u05d5\u05d2\u05de\u05d4.example").domain,
      "\u05d3\u05d5\u05d2\u05de\u05d4.example",
    );
    // mixed directions in one label, or a right-to-left label starting with a digit: invalid
    malformed("abc\u05d0@example.com");
    malformed("\u05d0abc@example.com");
    malformed("1\u05d0@example.com");
    malformed("\u0645\u0661\u0034@example.com"); // Arabic-Indic and European digits mixed
    malformed("user@ex\u05d0.example");
    // the rule does not apply to the resourcepart (OpaqueString has no directionality rule)
    assert.equal(parseJid("user@example.com/abc\u05d0").resource, "abc\u05d0");
  });

  it("enforces 1023 bytes per part, counting UTF-8 bytes", () => {
    assert.equal(parseJid(`${"a".repeat(1023)}@example.com`).local.length, 1023);
    malformed(`${"a".repeat(1024)}@example.com`);
    malformed(`${"\u00e9".repeat(512)}@example.com`);
    malformed(`user@example.com/${"r".repeat(1024)}`);
    malformed(`user@${"d".repeat(1024)}`);
  });
});

describe("Jid", () => {
  it("bare() drops the resource and equals() compares normalized parts", () => {
    const full = parseJid("Romeo@Example.net/Orchard");
    assert.ok(full.bare().equals(parseJid("romeo@example.net")));
    assert.equal(full.bare().resource, "");
    assert.ok(full.equals(jid("ROMEO", "example.NET.", "Orchard")));
    assert.ok(!full.equals(jid("romeo", "example.net", "orchard")));
  });

  it("jid() validates its parts like parseJid", () => {
    assert.throws(() => jid("a@b", "example.com"), StanzaError);
    assert.throws(() => jid("a", ""), StanzaError);
    assert.ok(jid("a", "example.com") instanceof Jid);
    assert.equal(jid("", "example.com", "r").toString(), "example.com/r");
  });
});

describe("isBareJid", () => {
  it("is true only for a valid JID without resource", () => {
    assert.equal(isBareJid("user@example.com"), true);
    assert.equal(isBareJid("example.com"), true);
    assert.equal(isBareJid("user@example.com/r"), false);
    assert.equal(isBareJid("@example.com"), false);
    assert.equal(isBareJid(""), false);
  });
});

describe("parseJid cache", () => {
  it("returns the same prepared JID for the same text, and bare() keeps the prepared parts", () => {
    const first = parseJid("Alice@Example.COM/phone");
    assert.equal(parseJid("Alice@Example.COM/phone"), first);
    const bare = first.bare();
    assert.ok(bare instanceof Jid);
    assert.equal(bare.toString(), "alice@example.com");
    assert.ok(bare.equals(parseJid("alice@example.com")));
    assert.equal(bare.bare(), bare);
  });

  it("keeps nothing of malformed text: it throws every time", () => {
    for (let i = 0; i < 2; i++) assert.throws(() => parseJid("a@b/"), /jid-malformed|resourcepart/);
  });

  it("stays bounded and correct past its size", () => {
    const first = parseJid("u0@example.com");
    for (let i = 1; i <= PARSED_JID_CACHE_SIZE; i++) parseJid(`u${i}@example.com`);
    const again = parseJid("u0@example.com");
    assert.notEqual(again, first, "the oldest entry was dropped");
    assert.ok(again.equals(first));
  });
});
