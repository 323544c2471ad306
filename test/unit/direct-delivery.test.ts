// DirectDelivery: which order mark a direct write carries, and when no direct write may be
// tried (a route to the shard in flight, a takeover's ends being read, a failed route).
import assert from "node:assert/strict";
import type { DirectOutcome, DirectWrite } from "../../services/shared/bus/bus.js";
import { DirectDelivery } from "../../services/session/io/direct-delivery.js";

/** Lets pending callbacks run until `check` holds (in-process only: no I/O involved). */
async function until(check: () => boolean): Promise<void> {
  for (let turns = 0; !check(); turns++) {
    if (turns > 100) throw new Error("never happened");
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A writer whose answers the test gives, one write at a time; it records each mark. */
class ScriptedWriter {
  readonly marks: string[] = [];
  readonly members: string[] = [];
  private readonly answers: ((outcome: DirectOutcome | Error) => void)[] = [];
  write(direct: DirectWrite): Promise<DirectOutcome> {
    this.marks.push(direct.mark);
    this.members.push(direct.member);
    return new Promise((resolve, reject) =>
      this.answers.push((o) => (o instanceof Error ? reject(o) : resolve(o))),
    );
  }
  answer(outcome: DirectOutcome | Error): void {
    this.answers.shift()!(outcome);
  }
}

const STANZA = { bareJid: "b@x", resource: "r", connId: "e.3.1", edge: "e:1", stanza: "<m/>" };

describe("DirectDelivery", () => {
  let writer: ScriptedWriter;
  let direct: DirectDelivery;
  /** Reads of every inbox end asked for, each answered by the test. */
  let reads: ((ends: Map<number, string>) => void)[];
  beforeEach(() => {
    writer = new ScriptedWriter();
    reads = [];
    direct = new DirectDelivery(
      writer,
      "s1",
      () => new Promise<Map<number, string>>((resolve) => reads.push(resolve)),
    );
  });

  it("does not hold a shard for a direct write in flight, and marks where one fell back", async () => {
    assert.equal(direct.allows(3), true);
    const first = direct.write(3, STANZA);
    // The bus orders a fallback of the first before the second by itself (DIRECT_DELIVER).
    assert.equal(direct.allows(3), true);
    const second = direct.write(3, STANZA);
    writer.answer({ path: "route", inboxId: "5-0" });
    writer.answer({ path: "edge" });
    await Promise.all([first, second]);
    const third = direct.write(3, STANZA);
    writer.answer({ path: "edge" });
    await third;
    // The mark was found handled: the next write does not have it checked again.
    const fourth = direct.write(3, STANZA);
    writer.answer({ path: "edge" });
    await fourth;
    assert.deepEqual(writer.marks, ["", "", "5-0", ""]);
    assert.deepEqual(writer.members, ["s1", "s1", "s1", "s1"]);
  });

  it("holds a shard while a route to it is in flight, and marks it once stored", async () => {
    let store!: (id: string) => void;
    const routed = direct.viaInbox(3, () => new Promise<string>((r) => (store = r)));
    assert.equal(direct.allows(3), false, "in flight: its entry id is unknown");
    assert.equal(direct.allows(4), true, "other shards are not held");
    store("7-1");
    assert.equal(await routed, "7-1");
    const next = direct.write(3, STANZA);
    writer.answer({ path: "edge" });
    await next;
    assert.deepEqual(writer.marks, ["7-1"]);
  });

  it("holds every shard while a takeover reads the inbox ends, which become marks", async () => {
    const taking = direct.takeOver();
    assert.equal(direct.allows(0), false);
    assert.equal(direct.allows(3), false);
    await until(() => reads.length === 1);
    reads[0](
      new Map([
        [0, "0-0"],
        [3, "9-2"],
      ]),
    );
    await taking;
    assert.equal(direct.allows(3), true);
    const next = direct.write(3, STANZA);
    writer.answer({ path: "edge" });
    await next;
    assert.deepEqual(writer.marks, ["9-2"]);
  });

  it("reads the ends once for takeovers that start together, again for a later one", async () => {
    const together = [direct.takeOver(), direct.takeOver(), direct.takeOver()];
    await until(() => reads.length === 1);
    const later = direct.takeOver();
    reads[0](new Map([[3, "4-0"]]));
    await Promise.all(together);
    assert.equal(direct.allows(3), false, "the later takeover's read is still to come");
    await until(() => reads.length === 2);
    reads[1](new Map([[3, "6-0"]]));
    await later;
    assert.equal(reads.length, 2);
    const next = direct.write(3, STANZA);
    writer.answer({ path: "edge" });
    await next;
    assert.deepEqual(writer.marks, ["6-0"]);
  });

  it("holds a shard after a failed route (stored or not, its id is unknown) until one succeeds", async () => {
    await assert.rejects(
      direct.viaInbox(3, async () => {
        throw new Error("connection lost");
      }),
    );
    assert.equal(direct.allows(3), false);
    await direct.viaInbox(3, async () => "12-0");
    assert.equal(direct.allows(3), true);
  });
});
