// Rendezvous hashing (services/shared/membership/rendezvous.ts): one owner per shard, an even
// spread, and a membership change moves only the changed member's shards.
import assert from "node:assert/strict";
import { ownerOf, shardsOf, weight } from "../../services/shared/membership/rendezvous.js";

const S = 1024;
const FOUR = ["session-a", "session-b", "session-c", "session-d"];

function owners(members: readonly string[]): (string | undefined)[] {
  return Array.from({ length: S }, (_, shard) => ownerOf(shard, members));
}

describe("rendezvous hashing", () => {
  it("gives every shard exactly one owner, the same whatever the member order", () => {
    const byOwner = owners(FOUR);
    assert.ok(byOwner.every((m) => m !== undefined && FOUR.includes(m)));
    assert.deepEqual(owners([...FOUR].reverse()), byOwner);
    const owned = FOUR.map((m) => shardsOf(m, FOUR, S));
    assert.equal(owned.flat().length, S);
    assert.deepEqual(
      owned.flat().sort((a, b) => a - b),
      Array.from({ length: S }, (_, i) => i),
    );
    for (const [i, member] of FOUR.entries())
      assert.ok(owned[i].every((shard) => ownerOf(shard, FOUR) === member));
  });

  it("is deterministic across processes: fixed weights and owners", () => {
    // Pinned values: a change of hash would reshuffle every deployment's shards on upgrade.
    assert.equal(weight("session-a", 0), 0x1e9f49b7304cbcbfn);
    assert.notEqual(weight("session-a", 0), weight("session-a", 1));
    assert.notEqual(weight("session-a", 0), weight("session-b", 0));
    assert.deepEqual(PINNED_OWNERS, owners(FOUR).slice(0, PINNED_OWNERS.length));
  });

  it("spreads S=1024 shards over N=4 members evenly (each within 20% of S/N)", () => {
    for (const member of FOUR) {
      const count = shardsOf(member, FOUR, S).length;
      assert.ok(Math.abs(count - S / 4) <= (S / 4) * 0.2, `${member} owns ${count}`);
    }
  });

  it("moves only the joining member's shards when one member joins", () => {
    const before = owners(FOUR);
    const five = [...FOUR, "session-e"];
    const after = owners(five);
    const moved = after.filter((owner, shard) => owner !== before[shard]);
    assert.ok(moved.every((owner) => owner === "session-e"));
    assert.equal(moved.length, shardsOf("session-e", five, S).length);
    assert.ok(Math.abs(moved.length - S / 5) <= (S / 5) * 0.25, `${moved.length} moved`);
  });

  it("moves only the leaving member's shards when one member leaves", () => {
    const before = owners(FOUR);
    const three = FOUR.filter((m) => m !== "session-c");
    const after = owners(three);
    const moved = after
      .map((owner, shard) => ({ owner, shard }))
      .filter(({ owner, shard }) => owner !== before[shard]);
    assert.deepEqual(
      moved.map((m) => m.shard),
      shardsOf("session-c", FOUR, S),
    );
    assert.ok(moved.every((m) => m.owner !== "session-c" && three.includes(m.owner ?? "")));
    assert.ok(Math.abs(moved.length - S / 4) <= (S / 4) * 0.2, `${moved.length} moved`);
  });

  it("gives one member every shard and no members no owner", () => {
    assert.deepEqual(
      shardsOf("only", ["only"], 64),
      Array.from({ length: 64 }, (_, i) => i),
    );
    assert.equal(ownerOf(0, []), undefined);
    assert.deepEqual(shardsOf("gone", ["only"], 64), []);
  });
});

// prettier-ignore
const PINNED_OWNERS = [
  "session-b", "session-a", "session-c", "session-d", "session-c", "session-a", "session-d", "session-a",
  "session-c", "session-b", "session-a", "session-d", "session-d", "session-c", "session-c", "session-a",
];
