import { strict as assert } from "node:assert";
import { Jid, isBareJid, jid, parseJid } from "../../services/shared/jid.js";
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
