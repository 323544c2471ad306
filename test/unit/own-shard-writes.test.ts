// Which entries of a node's served shards its own member wrote (own-shard-writes.ts): a batch
// of only those (and the edges' packets) bars nothing; one entry of another member's does.
import assert from "node:assert/strict";
import { OwnShardWrites } from "../../services/shared/bus/own-shard-writes.js";

describe("OwnShardWrites", () => {
  let own: OwnShardWrites;
  beforeEach(() => (own = new OwnShardWrites()));

  it("knows a batch of its own entries, and one with another member's entry", () => {
    own.wrote(2, "5-0");
    own.wrote(2, "7-0");
    assert.equal(own.allOwn(2, ["5-0"], "6-0"), true);
    assert.equal(own.allOwn(2, ["7-0", "8-0"], "8-0"), false, "8-0 is not ours");
    assert.equal(own.allOwn(2, [], "9-0"), true, "edge packets only");
    assert.equal(own.allOwn(3, ["7-0"], "7-0"), false, "another shard's entry");
  });

  it("counts an entry read before its write answered as another member's, and forgets its id later", () => {
    assert.equal(own.allOwn(2, ["5-0"], "5-0"), false, "read first: not known as ours yet");
    own.wrote(2, "5-0"); // the answer comes after the read
    own.wrote(2, "9-0");
    assert.equal(own.allOwn(2, ["9-0"], "9-0"), true);
    // 5-0 was dropped with that batch: a later read of the id (impossible) would not match.
    assert.equal(own.allOwn(2, ["5-0"], "9-0"), false);
  });

  it("forgets a shard it stops serving", () => {
    own.wrote(4, "5-0");
    own.stopped(4);
    assert.equal(own.allOwn(4, ["5-0"], "5-0"), false);
  });
});
