// When a node's edge may hand a socket's packet to its own member in process
// (own-member-intake.ts): only for a shard a read loop of the member reads, with its lease
// lasting, and only once every earlier write of the bus to that shard's inbox is handled; a
// loop's end waits for what it took in process.
import assert from "node:assert/strict";
import type { ShardBatchHandler } from "../../services/shared/bus/bus.js";
import { OwnMemberIntake, type IntakeLoop } from "../../services/shared/bus/own-member-intake.js";
import type { ShardEntry, ShardPacket } from "../../services/shared/bus/packets.js";

const DATA: ShardPacket = { k: "data", c: "e1.2.1", e: "e1", d: "<presence/>" };

/** A loop whose handler records entries and applies each when told to. */
function recordingLoop(readableForMs?: () => number) {
  const entries: ShardEntry[] = [];
  const finishers: ((err?: Error) => void)[] = [];
  const handler: ShardBatchHandler = (batch) => {
    entries.push(...batch);
    return new Promise<void>((resolve, reject) =>
      finishers.push((err) => (err ? reject(err) : resolve())),
    );
  };
  const loop: IntakeLoop = { handler, readableForMs };
  return { loop, entries, finish: (i: number, err?: Error) => finishers[i](err) };
}

/** A write through the inbox that resolves with `id` when `finish` is called. */
function pendingWrite(intake: OwnMemberIntake, shard: number) {
  let finish!: (id: string) => void;
  const done = intake.viaInbox(shard, () => new Promise<string>((resolve) => (finish = resolve)));
  return { done, finish: (id: string) => finish(id) };
}

describe("OwnMemberIntake", () => {
  let intake: OwnMemberIntake;
  beforeEach(() => (intake = new OwnMemberIntake()));

  it("takes packets only for shards a read loop reads, until the loop stops or the shard is given up", () => {
    assert.equal(intake.allows(2), false, "no loop");
    const served = intake.serve([2, 3], recordingLoop().loop);
    assert.equal(intake.allows(2), true);
    assert.equal(intake.allows(3), true);
    assert.equal(intake.allows(4), false, "not read by the loop");
    intake.stopped(3);
    assert.equal(intake.allows(3), false, "given up");
    served.stop();
    assert.equal(intake.allows(2), false, "the loop is stopping");
  });

  it("takes nothing once the lease has less than the margin left", () => {
    let left = 5000;
    intake.serve([2], recordingLoop(() => left).loop);
    assert.equal(intake.allows(2), true);
    left = 150;
    assert.equal(intake.allows(2), false);
  });

  it("bars a shard while a write to its inbox is in flight, and until it is handled", async () => {
    intake.serve([2], recordingLoop().loop);
    const write = pendingWrite(intake, 2);
    assert.equal(intake.allows(2), false, "in flight");
    assert.equal(intake.allows(3), false, "not served: unrelated to the write");
    write.finish("20-1");
    assert.equal(await write.done, "20-1");
    assert.equal(intake.allows(2), false, "stored, not handled yet");
    intake.handled(2, "20-0");
    assert.equal(intake.allows(2), false, "handled below it");
    intake.handled(2, "20-1");
    assert.equal(intake.allows(2), true, "handled up to it");
    intake.handled(2, "19-0");
    assert.equal(intake.allows(2), true, "an older report does not move it back");
  });

  it("bars a shard taken again until what was written while it was away is handled", async () => {
    const first = intake.serve([2], recordingLoop().loop);
    intake.handled(2, "10-0");
    first.stop();
    const write = pendingWrite(intake, 2); // another member serves it meanwhile
    write.finish("30-0");
    await write.done;
    intake.serve([2], recordingLoop().loop);
    assert.equal(intake.allows(2), false, "the write while away is not handled by us yet");
    intake.handled(2, "30-0");
    assert.equal(intake.allows(2), true);
  });

  it("hands a packet over as an in-process entry with an id of its own, resolving once applied", async () => {
    const { loop, entries, finish } = recordingLoop();
    intake.serve([2], loop);
    const first = intake.handOver(2, DATA);
    const second = intake.handOver(2, DATA);
    assert.equal(entries.length, 2, "handed to the loop's handler at once, in order");
    assert.equal(entries[0].inProcess, true);
    assert.equal(entries[0].shard, 2);
    assert.match(entries[0].id, /^0-\d+$/);
    assert.notEqual(entries[0].id, entries[1].id);
    finish(0);
    assert.equal(await first, entries[0].id);
    finish(1, new Error("fenced"));
    await assert.rejects(second, /fenced/);
  });

  it("refuses to hand over for a shard no loop reads", async () => {
    await assert.rejects(intake.handOver(2, DATA), /not served/);
  });

  it("a loop settles only once every packet it took is applied", async () => {
    const { loop, finish } = recordingLoop();
    const served = intake.serve([2], loop);
    const applied = intake.handOver(2, DATA);
    served.stop();
    let settled = false;
    const settling = served.settled().then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false, "a packet is still being applied");
    finish(0);
    await applied;
    await settling;
    assert.equal(settled, true);
  });

  it("a loop replaced by another for the same shard leaves the new one serving", () => {
    const old = intake.serve([2], recordingLoop().loop);
    intake.serve([2, 3], recordingLoop().loop);
    old.stop();
    assert.equal(intake.allows(2), true, "the new loop reads it");
  });
});
