// Pooled random identifiers (shared/random-id.ts): the right length in each encoding, never the
// same bytes twice across pool refills, and refusing sizes it cannot serve.
import assert from "node:assert/strict";
import { randomId } from "../../services/shared/random-id.js";

describe("randomId", () => {
  it("encodes the bytes asked for", () => {
    assert.match(randomId(12, "hex"), /^[0-9a-f]{24}$/);
    assert.equal(Buffer.from(randomId(18, "base64"), "base64").length, 18);
    assert.match(randomId(12, "base64url"), /^[A-Za-z0-9_-]{16}$/);
  });

  it("hands out no id twice across many pool refills", () => {
    const seen = new Set<string>();
    // 20,000 × 15 bytes: about 73 refills of the 4 KiB pool.
    for (let i = 0; i < 20000; i++) seen.add(randomId(15, "base64url"));
    assert.equal(seen.size, 20000);
  });

  it("refuses sizes outside 1–256 bytes", () => {
    for (const bytes of [0, -1, 257, 1.5]) assert.throws(() => randomId(bytes, "hex"), RangeError);
  });
});
