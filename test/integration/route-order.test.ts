// Issue 6 item 15, RFC 6121 §8 delivery order per recipient: a stanza for a connection that is
// still binding goes through that connection's inbox; a later one, written when the connection
// is bound, must not overtake it. The real LiveContext, connection table and reroute module
// on the in-process bus, with the test in the place of the connection's turn.
import assert from "node:assert/strict";
import type { ShardEntry } from "../../services/shared/bus/packets.js";
import { DEFAULTS, type Config } from "../../services/shared/config.js";
import { silentLogger } from "../../services/shared/log.js";
import { createBackend } from "../../services/shared/wiring.js";
import { newConnState } from "../../services/session/core/connection.js";
import type { Lease } from "../../services/shared/leases/shard-leases.js";
import { deliverRouted } from "../../services/session/io/reroute.js";
import { liveSession } from "../helpers/live-session.js";
import { until } from "../helpers/poll.js";

describe("per-recipient order for a connection that is binding (issue 6 item 15)", () => {
  it("queues a stanza behind one that went through the inbox, even once the recipient is bound", async () => {
    const config: Config = { ...DEFAULTS, shardCount: 4 };
    const backend = createBackend(config, silentLogger);
    // This member holds every shard's lease, as ShardOwnership would have it.
    const leases = new Map<number, Lease>();
    for (const shard of [0, 1, 2, 3])
      leases.set(shard, (await backend.leases.acquire(shard, "s1")) as Lease);
    const edgeFrames: string[] = [];
    const routed: ShardEntry[] = [];
    const stop = new AbortController();
    const { table, ctx, processor } = liveSession(
      backend,
      config,
      (shard) => leases.get(shard),
      stop.signal,
    );
    const readingEdge = backend.bus.consumeEdge(
      "e1",
      async (batch) => {
        for (const p of batch) if (p.k === "data") edgeFrames.push(p.d);
      },
      stop.signal,
    );
    const readingShard = backend.bus.consumeShards(
      [1],
      "s1",
      async (batch) => {
        routed.push(...batch);
      },
      stop.signal,
    );
    try {
      const bob = newConnState("e1.1.b", "e1", 1, Date.now());
      bob.stage = "restarted"; // binding: its bind is being handled in its own turn
      table.set(bob);
      const stanza = (n: number) =>
        `<message xmlns="jabber:client" to="bob@localhost/phone" id="m${n}"><body>${n}</body></message>`;

      await deliverRouted(ctx.scoped(), table, bob.connId, stanza(1), true);
      bob.stage = "bound";
      bob.bareJid = "bob@localhost";
      bob.resource = "phone";
      const later = ctx.scoped();
      await deliverRouted(later, table, bob.connId, stanza(2), true);
      await later.flush();
      await until(() => routed.length === 2, "both stanzas in bob's inbox", 5000, 1);

      // Both wait in bob's inbox, in order; nothing was written straight to his socket.
      assert.deepEqual(
        routed.map((e) => (e.packet.k === "route" ? [e.packet.d, e.packet.q] : e.packet.k)),
        [
          [stanza(1), "1"],
          [stanza(2), "1"],
        ],
      );
      assert.deepEqual(edgeFrames, []);

      // Applied by the processor in bob's turn, one after the other; then a third is
      // written at once (nothing waits in the inbox any more).
      await processor.handleBatch(routed);
      const third = ctx.scoped();
      await deliverRouted(third, table, bob.connId, stanza(3), true);
      await third.flush();
      await until(() => edgeFrames.length === 3, "three frames for bob", 5000, 1);
      assert.deepEqual(edgeFrames, [stanza(1), stanza(2), stanza(3)]);
    } finally {
      stop.abort();
      await Promise.all([readingEdge, readingShard]);
      await backend.close();
    }
  });
});
