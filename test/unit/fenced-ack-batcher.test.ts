// The session's acknowledgements of one turn, all shards together: one FencedWrites.ackMany,
// each request settled by its own shard's outcome. Real in-memory leases and fenced writes.
import assert from "node:assert/strict";
import { FencedError } from "../../services/shared/leases/fenced-error.js";
import type { FencedAck } from "../../services/shared/leases/fenced-writes.js";
import { MemoryFencedWrites } from "../../services/shared/leases/memory-fenced-writes.js";
import { MemoryShardLeases } from "../../services/shared/leases/memory-shard-leases.js";
import { FencedAckBatcher } from "../../services/session/io/fenced-ack-batcher.js";

class CountingFencedWrites extends MemoryFencedWrites {
  calls: number[] = [];
  override ackMany(items: readonly FencedAck[]) {
    this.calls.push(items.length);
    return super.ackMany(items);
  }
}

describe("FencedAckBatcher", () => {
  it("writes the acknowledgements asked for in one turn as one ackMany, settling each on its own shard", async () => {
    const leases = new MemoryShardLeases({ ttlMs: 60000 });
    const acked: [number, string[]][] = [];
    const fenced = new CountingFencedWrites(leases, {
      saveSnapshots: () => undefined,
      ack: (shard, ids) => (acked.push([shard, [...ids]]), ids.length),
    });
    const batcher = new FencedAckBatcher(fenced);
    const a = await leases.acquire(1, "m");
    const b = await leases.acquire(2, "m");
    assert.ok(a && b);
    assert.ok(await leases.release(b));

    const results = await Promise.allSettled([
      batcher.ack(a, ["1-1", "1-2"]),
      batcher.ack(b, ["2-1"]),
      batcher.ack(a, ["1-3"]),
    ]);
    assert.deepEqual(fenced.calls, [3], "one ackMany for the turn");
    assert.deepEqual(results[0], { status: "fulfilled", value: 2 });
    assert.equal(results[1].status, "rejected");
    assert.ok(results[1].status === "rejected" && results[1].reason instanceof FencedError);
    assert.deepEqual(results[2], { status: "fulfilled", value: 1 });
    assert.deepEqual(acked, [
      [1, ["1-1", "1-2"]],
      [1, ["1-3"]],
    ]);

    // A later turn is a write of its own.
    assert.equal(await batcher.ack(a, ["1-4"]), 1);
    assert.deepEqual(fenced.calls, [3, 1]);
  });
});
