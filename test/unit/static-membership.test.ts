// StaticMembership: a fixed member list from configuration that never changes while joined.
import assert from "node:assert/strict";
import { StaticMembership } from "../../services/shared/membership/static-membership.js";

describe("StaticMembership", () => {
  it("shows the configured members, sorted and once each, from join until leave", async () => {
    const m = new StaticMembership(["s-b", "s-a", "s-b"]);
    const seen: string[][] = [];
    m.onChange((members) => seen.push([...members]));
    assert.deepEqual(m.members(), []);
    await m.join("s-a");
    assert.deepEqual(m.members(), ["s-a", "s-b"]);
    await m.leave();
    await m.leave();
    assert.deepEqual(m.members(), []);
    assert.deepEqual(seen, [["s-a", "s-b"], []]);
    await m.close();
  });

  it("a membership of one member: that member is all there is", async () => {
    const m = new StaticMembership(["only"]);
    await m.join("only");
    assert.deepEqual(m.members(), ["only"]);
  });

  it("refuses a member id missing from the list, and an empty list", async () => {
    const m = new StaticMembership(["s-a"]);
    await assert.rejects(m.join("s-z"), /not in the static membership/);
    assert.deepEqual(m.members(), []);
    assert.throws(() => new StaticMembership([]), /at least one/);
    assert.throws(() => new StaticMembership([""]), /non-empty/);
  });
});
