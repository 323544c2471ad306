// SnapshotWriter: a turn's saves of one shard are one write; saveTogether() stores saves of
// several shards in one step of their own, at once, all or none.
import assert from "node:assert/strict";
import {
  SnapshotWriter,
  type ShardSnapshotWrite,
  type SnapshotSink,
} from "../../services/session/io/snapshot-writer.js";

describe("SnapshotWriter", () => {
  let writes: string[];
  const sink: SnapshotSink = async (shard, save, remove, ackIds) => {
    writes.push(
      `shard ${shard}: save=${[...save.keys()].join()} remove=${remove.join()} ack=${ackIds.join()}`,
    );
  };
  const describeStep = (step: readonly ShardSnapshotWrite[]) =>
    step
      .map(
        ({ shard, save, ackIds, unacked }) =>
          `shard ${shard}: save=${[...save.keys()].join()} ack=${ackIds.join()} queued=${unacked.map((u) => u.seq).join()}`,
      )
      .join(" + ");

  beforeEach(() => {
    writes = [];
  });

  it("joins the saves of one shard requested in one turn into one write", async () => {
    const writer = new SnapshotWriter(sink);
    await Promise.all([
      writer.save(1, "a", "{}", ["1-1"]),
      writer.save(1, "b", "{}", ["1-2"]),
      writer.save(2, "c", "{}"),
    ]);
    assert.deepEqual(writes, [
      "shard 1: save=a,b remove= ack=1-1,1-2",
      "shard 2: save=c remove= ack=",
    ]);
  });

  it("stores saves of several shards in one step, at once, one part per shard", async () => {
    const steps: string[] = [];
    const writer = new SnapshotWriter(sink, async (step) => void steps.push(describeStep(step)));
    assert.equal(writer.writesTogether, true);
    const stored = writer.saveTogether([
      { shard: 1, connId: "bob", snapshot: "{}", unacked: [{ smId: "s", seq: 4, stanza: "<m/>" }] },
      { shard: 1, connId: "carol", snapshot: "{}" },
      { shard: 0, connId: "alice", snapshot: "{}", ackIds: ["1-1"] },
    ]);
    // Not held for the turn's batches: a unit's own save must never be written on its own.
    assert.deepEqual(steps, [
      "shard 1: save=bob,carol ack= queued=4 + shard 0: save=alice ack=1-1 queued=",
    ]);
    await stored;
    assert.deepEqual(writes, []);
  });

  it("rejects, having stored nothing, when the step is refused", async () => {
    const writer = new SnapshotWriter(sink, async () => {
      throw new Error("fenced");
    });
    await assert.rejects(
      writer.saveTogether([{ shard: 1, connId: "bob", snapshot: "{}" }]),
      /fenced/,
    );
  });

  it("takes no saves of several shards where the store writes one shard per step", () => {
    const writer = new SnapshotWriter(sink);
    assert.equal(writer.writesTogether, false);
    assert.throws(
      () => writer.saveTogether([{ shard: 1, connId: "bob", snapshot: "{}" }]),
      /one shard per step/,
    );
  });
});
