// DirectDelivery: which order mark a direct write carries, and when no direct write may be
// tried (an inbox write to the shard in flight, a takeover's ends being read, a failed write).
import assert from "node:assert/strict";
import type { DirectOutcome, DirectWrite } from "../../services/shared/bus/bus.js";
import { DirectDelivery } from "../../services/session/io/direct-delivery.js";

/** A writer whose answers the test gives, one write at a time; it records each mark. */
class ScriptedWriter {
  readonly marks: string[] = [];
  private readonly answers: ((outcome: DirectOutcome | Error) => void)[] = [];
  write(direct: DirectWrite): Promise<DirectOutcome> {
    this.marks.push(direct.mark);
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
  beforeEach(() => {
    writer = new ScriptedWriter();
    direct = new DirectDelivery(writer);
  });

  it("holds a shard while a write to it is in flight, and marks what it routed", async () => {
    assert.equal(direct.allows(3), true);
    const first = direct.write(3, STANZA);
    assert.equal(direct.allows(3), false, "in flight: its entry id is unknown");
    assert.equal(direct.allows(4), true, "other shards are not held");
    writer.answer({ path: "route", inboxId: "5-0" });
    await first;
    assert.equal(direct.allows(3), true);
    const second = direct.write(3, STANZA);
    writer.answer({ path: "edge" });
    await second;
    assert.deepEqual(writer.marks, ["", "5-0"]);
    // The mark was found handled: the next write does not have it checked again.
    const third = direct.write(3, STANZA);
    writer.answer({ path: "edge" });
    await third;
    assert.deepEqual(writer.marks, ["", "5-0", ""]);
  });

  it("marks routes written through the inbox, after they are stored", async () => {
    let store!: (id: string) => void;
    const routed = direct.viaInbox(3, () => new Promise<string>((r) => (store = r)));
    assert.equal(direct.allows(3), false);
    store("7-1");
    assert.equal(await routed, "7-1");
    const next = direct.write(3, STANZA);
    writer.answer({ path: "edge" });
    await next;
    assert.deepEqual(writer.marks, ["7-1"]);
  });

  it("holds every shard while a takeover reads the inbox ends, which become marks", async () => {
    let ends!: (m: Map<number, string>) => void;
    const taking = direct.takeOver(() => new Promise<Map<number, string>>((r) => (ends = r)));
    assert.equal(direct.allows(0), false);
    assert.equal(direct.allows(3), false);
    ends(
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

  it("holds a shard after a failed write (stored or not, its id is unknown) until an inbox write succeeds", async () => {
    const failed = direct.write(3, STANZA);
    writer.answer(new Error("connection lost"));
    await assert.rejects(failed);
    assert.equal(direct.allows(3), false);
    await direct.viaInbox(3, async () => "12-0");
    assert.equal(direct.allows(3), true);
  });
});
