// When a node's edge may hand a socket's packet to its own member in process
// (own-member-intake.ts): only for a shard a read loop of the member reads, with its lease
// lasting, and only once that loop has handled every earlier write of the edge to that shard's
// inbox; per connection, an inbox write waits for its earlier packets; a packet the member
// could not apply goes to the inbox with its in-process id; a loop's end waits for what it took.
import assert from "node:assert/strict";
import type { ShardBatchHandler } from "../../services/shared/bus/bus.js";
import {
  OwnMemberIntake,
  type IntakeLoop,
  type SocketPacket,
} from "../../services/shared/bus/own-member-intake.js";
import type { ShardEntry, ShardPacket } from "../../services/shared/bus/packets.js";

const data = (n: number, c = "e1.2.1"): SocketPacket => ({ k: "data", c, e: "e1", d: `${n}` });

/** A loop whose handler records entries and settles each when told to. */
function recordingLoop(readableForMs?: () => number) {
  const entries: ShardEntry[] = [];
  /** The handler's calls: the entries of each. */
  const batches: ShardEntry[][] = [];
  const finishers: ((err?: Error) => void)[] = [];
  const handler: ShardBatchHandler = (batch) => {
    entries.push(...batch);
    batches.push([...batch]);
    return new Promise<void>((resolve, reject) =>
      finishers.push((err) => (err ? reject(err) : resolve())),
    );
  };
  const loop: IntakeLoop = { handler, readableForMs };
  return { loop, entries, batches, finish: (i: number, err?: Error) => finishers[i](err) };
}

/** The inbox: records writes; each resolves with the id given to `store`. */
function recordingInbox() {
  const writes: { shard: number; packet: ShardPacket; store: (id: string) => void }[] = [];
  const write = (shard: number, packet: ShardPacket) =>
    new Promise<string>((resolve) => writes.push({ shard, packet, store: resolve }));
  return { writes, write };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("OwnMemberIntake", () => {
  let inbox: ReturnType<typeof recordingInbox>;
  let intake: OwnMemberIntake;
  let paths: string[];
  beforeEach(() => {
    inbox = recordingInbox();
    paths = [];
    intake = new OwnMemberIntake(inbox.write, (path) => paths.push(path));
  });

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

  it("takes nothing while the lease has less than the margin left, and again once it is renewed", () => {
    let expiresAtMs = Date.now() + 150;
    intake.serve([2], recordingLoop(() => expiresAtMs - Date.now()).loop);
    assert.equal(intake.allows(2), false);
    expiresAtMs = Date.now() + 5000;
    assert.equal(intake.allows(2), true, "renewed");
  });

  it("hands packets over as in-process entries with ids of their own, resolving once applied", async () => {
    const { loop, entries, finish } = recordingLoop();
    intake.serve([2], loop);
    const first = intake.write(2, data(1));
    const second = intake.write(2, data(2));
    assert.equal(entries.length, 0, "handed over once the event loop checks");
    await tick();
    assert.equal(entries.length, 2, "handed to the loop's handler, in order");
    assert.equal(entries[0].inProcess, true);
    assert.equal(entries[0].shard, 2);
    assert.match(entries[0].id, /^0-\d+$/);
    assert.notEqual(entries[0].id, entries[1].id);
    finish(0);
    assert.deepEqual(await Promise.all([first, second]), [entries[0].id, entries[1].id]);
    assert.deepEqual(paths, ["in-process", "in-process"]);
    assert.equal(inbox.writes.length, 0);
  });

  it("hands a connection's packets of one turn of the event loop over together, each connection's apart", async () => {
    const { loop, batches, finish } = recordingLoop();
    intake.serve([2], loop);
    const written = [
      intake.write(2, data(1)),
      intake.write(2, data(2, "e1.2.2")),
      intake.write(2, data(3)),
    ];
    await tick();
    assert.deepEqual(
      batches.map((batch) => batch.map((e) => ("d" in e.packet ? e.packet.d : e.packet.k))),
      [["1", "3"], ["2"]],
      "one unit for e1.2.1's two packets (one snapshot write), another for e1.2.2's",
    );
    const later = intake.write(2, data(4));
    await tick();
    assert.deepEqual(
      batches.map((batch) => batch.map((e) => ("d" in e.packet ? e.packet.d : e.packet.k))),
      [["1", "3"], ["2"], ["4"]],
      "a later turn's packet is a unit of its own",
    );
    for (let i = 0; i < 3; i++) finish(i);
    await Promise.all([...written, later]);
  });

  it("bars a shard while the edge's write to its inbox is pending, and until this loop handled it", async () => {
    const served = intake.serve([2], recordingLoop().loop);
    const undelivered = intake.toInbox(2, { k: "undelivered", c: "e1.2.9", e: "e1", d: "<x/>" });
    assert.equal(intake.allows(2), false, "in flight");
    inbox.writes[0].store("20-1");
    assert.equal(await undelivered, "20-1");
    assert.equal(intake.allows(2), false, "stored, not handled yet");
    served.handled(2, "20-0");
    assert.equal(intake.allows(2), false, "handled below it");
    served.handled(2, "20-1");
    assert.equal(intake.allows(2), true, "handled up to it");
    served.handled(2, "19-0");
    assert.equal(intake.allows(2), true, "an older report does not move it back");
  });

  it("takes nothing from a new loop until it has itself handled the edge's writes", async () => {
    const old = intake.serve([2], recordingLoop().loop);
    const undelivered = intake.toInbox(2, { k: "undelivered", c: "e1.2.9", e: "e1", d: "<x/>" });
    inbox.writes[0].store("30-0");
    await undelivered;
    // Reported by the old loop, which may have dropped entries up to there (a lapsed lease).
    old.handled(2, "30-0");
    assert.equal(intake.allows(2), true);
    old.stop();
    const fresh = intake.serve([2], recordingLoop().loop);
    assert.equal(intake.allows(2), false, "the new loop has handled nothing yet");
    fresh.handled(2, "30-0");
    assert.equal(intake.allows(2), true);
  });

  it("sends a connection's inbox write only once its in-process packets are placed", async () => {
    const { loop, finish } = recordingLoop();
    const served = intake.serve([2], loop);
    const inProcess = intake.write(2, data(1));
    served.stop(); // the lease is going: the next packet goes to the inbox
    const later = intake.write(2, data(2));
    const other = intake.write(2, data(7, "e1.2.2"));
    await tick();
    assert.deepEqual(
      inbox.writes.map((w) => w.packet),
      [data(7, "e1.2.2")],
      "another connection's goes at once; this one's waits",
    );
    finish(0);
    await inProcess;
    await tick();
    assert.deepEqual(
      inbox.writes.map((w) => w.packet),
      [data(7, "e1.2.2"), data(2)],
    );
    inbox.writes[0].store("5-0");
    inbox.writes[1].store("5-1");
    assert.equal(await later, "5-1");
    await other;
  });

  it("writes a packet the member could not apply to the inbox, with its id, before the connection's later ones", async () => {
    const { loop, entries, finish } = recordingLoop();
    const served = intake.serve([2], loop);
    const first = intake.write(2, data(1));
    const second = intake.write(2, data(2)); // handed over with the first, as one unit
    await tick();
    finish(0, new Error("lease lost"));
    assert.equal(
      await Promise.race([first.then(() => "settled"), tick().then(() => "open")]),
      "open",
    );
    await tick();
    assert.equal(intake.allows(2), false, "a failed loop takes nothing more");
    // Taken again at once by a new loop: nothing goes in process while the fallback is pending.
    intake.serve([2], recordingLoop().loop);
    assert.equal(intake.allows(2), false, "the fallback is an inbox write pending");
    const third = intake.write(2, data(3));
    for (let i = 0; i < 5; i++) await tick();
    assert.deepEqual(
      inbox.writes.map((w) => w.packet),
      [{ ...data(1), i: entries[0].id }, { ...data(2), i: entries[1].id }, data(3)],
      "in the socket's order, the failed ones with the origins they had",
    );
    inbox.writes.forEach((w, i) => w.store(`9-${i}`));
    assert.deepEqual(await Promise.all([first, second, third]), ["9-0", "9-1", "9-2"]);
    assert.deepEqual(paths, ["in-process", "in-process", "fallback", "fallback", "inbox"]);
    void served;
  });

  it("a loop settles only once every packet it took is settled", async () => {
    const { loop, finish } = recordingLoop();
    const served = intake.serve([2], loop);
    const applied = intake.write(2, data(1));
    served.stop();
    let settled = false;
    const settling = served.settled().then(() => (settled = true));
    await tick();
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
