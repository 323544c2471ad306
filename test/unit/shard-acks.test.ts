// ShardAcks: the acknowledgements asked for in one turn of the event loop, whatever their
// shards, reach the writer as one call (a session member writes them in one fenced script:
// FencedWrites.ackMany); a later turn is a call of its own; a failed write is tried again.
import assert from "node:assert/strict";
import type { ShardEntry } from "../../services/shared/bus/packets.js";
import { ShardAcks } from "../../services/shared/bus/shard-acks.js";
import { silentLogger } from "../../services/shared/log.js";

const entry = (shard: number, id: string): ShardEntry => ({
  id,
  shard,
  packet: { k: "close", c: `e1.${shard}.1`, e: "e1", d: "client" },
});

describe("ShardAcks", () => {
  it("writes the acks of one turn, every shard, in one call; a later turn in another", async () => {
    const calls: [number, string[]][][] = [];
    let failOnce = true;
    const acks = new ShardAcks(
      async (batch) => {
        calls.push([...batch].map(([shard, ids]) => [shard, [...ids]]));
        if (calls.length === 2 && failOnce) {
          failOnce = false;
          throw new Error("redis down");
        }
      },
      silentLogger,
      new AbortController().signal,
      () => false,
    );
    acks.ack([entry(1, "1-1"), entry(2, "2-1")]);
    acks.ack([entry(1, "1-2")]);
    await acks.flush();
    assert.deepEqual(calls, [
      [
        [1, ["1-1", "1-2"]],
        [2, ["2-1"]],
      ],
    ]);
    acks.ack([entry(3, "3-1")]);
    await acks.flush();
    assert.deepEqual(calls.slice(1), [[[3, ["3-1"]]], [[3, ["3-1"]]]], "failed once, tried again");
  });
});
