// A shard's start overtaken by its stop (the lease lost while the snapshots load, or while the
// inbox ends are read): the start that resumes afterwards serves nothing. It neither restores
// the shard's connections after stop() forgot them, nor opens local delivery, nor tells a
// node's edge to hand its frames over in process, nor reads the inbox.
import assert from "node:assert/strict";
import {
  SessionShardHost,
  type OwnEdgeShards,
  type ShardHostDeps,
} from "../../services/session/io/shard-host.js";
import { ConnectionTable } from "../../services/session/io/connection-table.js";
import { LocalDelivery } from "../../services/session/io/local-delivery.js";
import type { PacketProcessor } from "../../services/session/io/packet-processor.js";
import { MemoryBus } from "../../services/shared/bus/memory-bus.js";
import type { FencedWrites } from "../../services/shared/leases/fenced-writes.js";
import type { Lease } from "../../services/shared/leases/shard-leases.js";
import { silentLogger } from "../../services/shared/log.js";
import type { ConnState } from "../../services/session/core/connection.js";
import type { SnapshotStore } from "../../services/shared/stores/snapshot/snapshot-store.js";

/** A promise and the function that settles it. */
function gate<T>() {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

/** A host over a memory bus, no processor and no lease, but for what `deps` gives. */
function hostWith(deps: Partial<ShardHostDeps>): SessionShardHost {
  return new SessionShardHost({
    bus: new MemoryBus({ readCount: 100 }),
    snapshots: { loadShard: async () => new Map() } as unknown as SnapshotStore,
    fenced: {} as FencedWrites,
    table: new ConnectionTable(),
    processor: {} as PacketProcessor,
    local: new LocalDelivery(),
    inboxLags: new Map(),
    consumerName: "m1",
    log: silentLogger,
    leaseOf: () => undefined,
    stepDown: () => undefined,
    refused: () => undefined,
    ...deps,
  });
}

describe("SessionShardHost: a start overtaken by a stop", () => {
  function setup() {
    const bus = new MemoryBus({ readCount: 100 });
    const ending = gate<string>();
    bus.shardInboxEnd = () => ending.promise;
    const table = new ConnectionTable();
    const local = new LocalDelivery();
    const loading = gate<Map<string, string>>();
    const told: string[] = [];
    const ownEdge: OwnEdgeShards = {
      serving: async (shard) => void told.push(`serving ${shard}`),
      released: (shard) => void told.push(`released ${shard}`),
      resumeRefused: () => undefined,
    };
    const snapshot = JSON.stringify({ connId: "e1.2.1", shard: 2, edgeId: "e1", stage: "bound" });
    const host = hostWith({
      bus,
      snapshots: { loadShard: () => loading.promise } as unknown as SnapshotStore,
      table,
      local,
      ownEdge,
    });
    const lease = { shard: 2, member: "m1", token: 1 } as unknown as Lease;
    return { host, table, local, told, loading, ending, snapshot, lease, bus };
  }

  it("stopped while its snapshots load: restores nothing and serves nothing", async () => {
    const t = setup();
    const starting = t.host.start(2, t.lease);
    await t.host.stop(2, false);
    t.loading.open(new Map([["e1.2.1", t.snapshot]]));
    await starting;
    assert.equal(t.table.size, 0, "the stopped shard's connections stay forgotten");
    assert.equal(t.local.serves(2), false);
    assert.deepEqual(t.told, ["released 2"]);
  });

  it("stopped while the inbox ends are read: serves nothing", async () => {
    const t = setup();
    const starting = t.host.start(2, t.lease);
    t.loading.open(new Map([["e1.2.1", t.snapshot]]));
    await new Promise((resolve) => setImmediate(resolve));
    await t.host.stop(2, false);
    t.ending.open("0-0");
    await starting;
    assert.equal(t.table.size, 0);
    assert.equal(t.local.serves(2), false);
    // The node's edge was asked while the start ran; the stop after it is what counts.
    assert.deepEqual(t.told, ["serving 2", "released 2"]);
  });
});

describe("SessionShardHost: a planned stop", () => {
  it("saves the connections kept in memory only (logins of the node's own sockets) through the lease", async () => {
    const table = new ConnectionTable();
    const lease = { shard: 2, member: "m1", token: 1 } as unknown as Lease;
    const written: { lease: Lease; save: ReadonlyMap<string, string> }[] = [];
    const fenced = {
      writeSnapshots: async (held: Lease, save: ReadonlyMap<string, string>) =>
        void written.push({ lease: held, save }),
    } as unknown as FencedWrites;
    const host = hostWith({ fenced, table, leaseOf: () => lease });
    const login = { connId: "e1.2.1", shard: 2, edgeId: "e1", stage: "opened" };
    const saved = { connId: "e1.2.2", shard: 2, edgeId: "e1", stage: "bound" };
    const elsewhere = { connId: "e1.3.1", shard: 3, edgeId: "e1", stage: "opened" };
    for (const conn of [login, saved, elsewhere]) table.set(conn as unknown as ConnState);
    table.markUnsaved(login.connId, true);
    table.markUnsaved(elsewhere.connId, true);
    await host.stop(2, true);
    assert.equal(written.length, 1);
    assert.equal(written[0].lease, lease);
    assert.deepEqual([...written[0].save.keys()], [login.connId], "this shard's unsaved only");
    assert.deepEqual(JSON.parse(written[0].save.get(login.connId) as string), login);
    assert.equal(table.get(login.connId), undefined, "then forgotten: the next owner's");
    await host.stop(3, false);
    assert.equal(written.length, 1, "an unplanned stop saves nothing: the lease may be gone");
  });
});
