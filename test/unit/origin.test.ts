// Origins of deliveries (services/shared/bus/origin.ts): numbered in the order an entry issues
// them, extended when carried by a routed stanza, and recognised by the receiver when repeated.
import assert from "node:assert/strict";
import {
  OriginCounter,
  OriginMemory,
  REMEMBERED_ORIGINS,
  parseOrigin,
  rememberOrigin,
} from "../../services/shared/bus/origin.js";

describe("origins of deliveries", () => {
  it("numbers an entry's effects in order, and the same again when the entry is applied again", () => {
    const first = new OriginCounter("e1.3.a", "17-0");
    const again = new OriginCounter("e1.3.a", "17-0");
    const taken = [first.take(), first.take(), first.take()];
    assert.deepEqual(taken, ["e1.3.a|17-0|0", "e1.3.a|17-0|1", "e1.3.a|17-0|2"]);
    assert.deepEqual([again.take(), again.take(), again.take()], taken);
  });

  it("keeps a carried origin for the delivery and extends it for anything after", () => {
    const carried = OriginCounter.carried("e1.3.a|17-0|1");
    assert.ok(carried);
    assert.equal(carried.take(), "e1.3.a|17-0|1", "the same as a local delivery");
    assert.equal(carried.take(), "e1.3.a|17-0|1.1");
    assert.equal(carried.take(), "e1.3.a|17-0|1.2");
    assert.equal(OriginCounter.carried("not an origin"), undefined);
    assert.deepEqual(parseOrigin("c|5-1|2.0"), { conn: "c", entry: "5-1", seq: [2, 0] });
    assert.equal(parseOrigin("c|5-1|x"), undefined);
  });

  it("accepts each origin once and anything without one always", () => {
    const memory = new OriginMemory();
    assert.equal(memory.accept("c|1-0|0"), true);
    assert.equal(memory.accept("c|1-0|1"), true);
    assert.equal(memory.accept("c|1-0|0"), false);
    assert.equal(memory.accept(undefined), true);
    assert.equal(memory.accept(undefined), true);
    // Arrival order does not matter: an older origin not seen before is new.
    assert.equal(memory.accept("c|0-5|0"), true);
  });

  it("remembers a bounded number of origins, forgetting the oldest", () => {
    const memory = new OriginMemory();
    for (let i = 0; i <= REMEMBERED_ORIGINS; i++) assert.ok(memory.accept(`c|${i}-0|0`));
    assert.equal(memory.accept(`c|${REMEMBERED_ORIGINS}-0|0`), false, "recent: a repeat");
    assert.equal(memory.accept("c|0-0|0"), true, "the oldest was forgotten");
  });

  it("keeps exactly the last ones however many times its ring has turned", () => {
    const memory = new OriginMemory();
    const total = 3 * REMEMBERED_ORIGINS + 5;
    for (let i = 0; i < total; i++) assert.ok(memory.accept(`c|${i}-0|0`));
    // Repeats are not remembered again, so the newest ones can be checked first.
    for (let i = total - REMEMBERED_ORIGINS; i < total; i++)
      assert.equal(memory.accept(`c|${i}-0|0`), false, `origin ${i} is among the last`);
    assert.equal(memory.accept(`c|${total - REMEMBERED_ORIGINS - 1}-0|0`), true, "one older");
  });

  it("keeps the same record as plain data in a state: each origin once, the last ones only", () => {
    let recent: string | undefined;
    const seen = (origin: string) => {
      const next = rememberOrigin(recent, origin);
      if (next === undefined) return false;
      recent = next;
      return true;
    };
    assert.equal(seen("c|1-0|0"), true);
    assert.equal(seen("c|1-0|1"), true);
    assert.equal(seen("c|1-0|0"), false);
    assert.equal(seen("c|1-0|1"), false);
    assert.equal(seen("c|1-0|1.1"), true, "a prefix of another is another origin");
    assert.equal(seen("c|1-0"), true);
    for (let i = 2; i < 2 + REMEMBERED_ORIGINS; i++) assert.ok(seen(`c|${i}-0|0`));
    assert.equal(recent?.split(" ").length, REMEMBERED_ORIGINS, "bounded");
    // Digests of 16 characters each, whatever an origin's length.
    assert.equal(recent?.length, REMEMBERED_ORIGINS * 17 - 1);
    assert.equal(seen(`c|${REMEMBERED_ORIGINS + 1}-0|0`), false, "recent: a repeat");
    assert.equal(seen("c|1-0|0"), true, "the oldest were forgotten");
  });
});
