// The memory stores' copies (stores/json-copy.ts) must be exactly what a JSON round trip
// gives, as the Redis stores return it, whether they take the field-by-field path or not.
import assert from "node:assert/strict";
import { jsonCopy } from "../../services/shared/stores/json-copy.js";

const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

describe("jsonCopy", () => {
  it("gives what a JSON round trip gives, for flat records and everything else", () => {
    const values: unknown[] = [
      { connId: "e1.3.a", resource: "phone", priority: 5, available: true, edge: "e1" },
      { a: "x", gone: undefined, nothing: null, zero: 0, negative: -3.5 },
      { notANumber: NaN, infinite: Infinity, minusZero: -0 },
      { nested: { salt: "c2FsdA==", iterations: 4096 }, list: [1, 2] },
      { when: new Date(0) },
      [1, "two", { three: 3 }],
      "text",
      42,
      null,
    ];
    for (const value of values) assert.deepEqual(jsonCopy(value), viaJson(value));
  });

  it("never shares what it copies", () => {
    const flat = { connId: "e1.3.a", priority: 1 };
    const nested = { credentials: { salt: "s" } };
    const flatCopy = jsonCopy(flat);
    const nestedCopy = jsonCopy(nested);
    flatCopy.priority = 2;
    nestedCopy.credentials.salt = "changed";
    assert.equal(flat.priority, 1);
    assert.equal(nested.credentials.salt, "s");
    assert.notEqual(flatCopy, flat);
  });

  it("drops fields set to undefined, as JSON does", () => {
    assert.deepEqual(Object.keys(jsonCopy({ a: 1, b: undefined })), ["a"]);
  });
});
