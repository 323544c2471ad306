// SnapshotWriter: a turn's saves of one shard are one write; saveTogether() stores saves of
// several shards in one step of their own, at once, all or none.
import assert from "node:assert/strict";
import {
  SnapshotWriter,
  type ShardSnapshotWrite,
  type SnapshotSink,
} from "../../services/session/io/snapshot-writer.js";

describe("SnapshotWriter", () => {
  /** Each step the sink was given, its parts joined by " + ". */
  let steps: string[];
  const describePart = ({ shard, save, remove, ackIds, unacked, frames }: ShardSnapshotWrite) =>
    `shard ${shard}: save=${[...save.keys()].join()} remove=${remove.join()} ack=${ackIds.join()} queued=${unacked.map((u) => u.seq).join()}${frames.length > 0 ? ` frames=${frames.map((f) => f.frame).join()}` : ""}`;
  const sink: SnapshotSink = async (step) => void steps.push(step.map(describePart).join(" + "));

  beforeEach(() => {
    steps = [];
  });

  it("joins the saves of one shard requested in one turn into one write", async () => {
    const writer = new SnapshotWriter(sink);
    await Promise.all([
      writer.save(1, "a", "{}", ["1-1"]),
      writer.save(1, "b", "{}", ["1-2"]),
      writer.save(2, "c", "{}"),
    ]);
    assert.deepEqual(steps, [
      "shard 1: save=a,b remove= ack=1-1,1-2 queued=",
      "shard 2: save=c remove= ack= queued=",
    ]);
  });

  it("stores saves of several shards in one step, at once, one part per shard", async () => {
    const writer = new SnapshotWriter(sink, true);
    assert.equal(writer.writesTogether, true);
    const stored = writer.saveTogether([
      { shard: 1, connId: "bob", snapshot: "{}", unacked: [{ smId: "s", seq: 4, stanza: "<m/>" }] },
      { shard: 1, connId: "carol", snapshot: "{}" },
      { shard: 0, connId: "alice", snapshot: "{}", ackIds: ["1-1"] },
    ]);
    // Not held for the turn's batches: a unit's own save must never be written on its own.
    assert.deepEqual(steps, [
      "shard 1: save=bob,carol remove= ack= queued=4 + shard 0: save=alice remove= ack=1-1 queued=",
    ]);
    await stored;
    assert.equal(steps.length, 1, "one step, nothing written besides it");
  });

  it("carries frames for edges with the saves of the states that count them, in order", async () => {
    const writer = new SnapshotWriter(sink, true, true);
    const frame = (connId: string, d: string) => ({ edgeId: "e1", connId, frame: d });
    await Promise.all([
      writer.save(1, "bob", "{}", undefined, undefined, [frame("bob", "<m1/>")]),
      writer.save(1, "carol", "{}", undefined, undefined, [frame("carol", "<m2/>")]),
    ]);
    await writer.saveTogether([
      { shard: 1, connId: "bob", snapshot: "{}", frames: [frame("bob", "<m3/>")] },
      { shard: 0, connId: "alice", snapshot: "{}", ackIds: ["1-1"] },
    ]);
    assert.deepEqual(steps, [
      "shard 1: save=bob,carol remove= ack= queued= frames=<m1/>,<m2/>",
      "shard 1: save=bob remove= ack= queued= frames=<m3/> + shard 0: save=alice remove= ack=1-1 queued=",
    ]);
    assert.equal(writer.writesEdgeFrames, true);
  });

  it("rejects the whole step when its write is refused", async () => {
    const writer = new SnapshotWriter(async () => {
      throw new Error("fenced");
    }, true);
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
    assert.deepEqual(steps, []);
  });
});
