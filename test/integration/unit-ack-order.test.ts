// When a unit's acknowledgement rides in its snapshot's fenced write (packet-processor.ts
// runUnit) and when it must wait: the ack is never stored before the unit's effects and its
// snapshot, nor before the writes that follow the snapshot (an XEP-0198 resumption deletes the
// old connection's snapshot once the moved one is saved). The real core on the memory backend,
// with its fenced writes recorded in order, and the test in the place of the read loop.
import assert from "node:assert/strict";
import type { EdgePacket, ShardEntry, ShardPacket } from "../../services/shared/bus/packets.js";
import { DEFAULTS, type Config } from "../../services/shared/config.js";
import type { Lease } from "../../services/shared/leases/shard-leases.js";
import { silentLogger } from "../../services/shared/log.js";
import { createBackend, type Backend } from "../../services/shared/wiring.js";
import { newConnState, type ConnState } from "../../services/session/core/connection.js";
import { newSmState } from "../../services/session/features/sm/sm-state.js";
import type { ConnectionTable } from "../../services/session/io/connection-table.js";
import type { PacketProcessor } from "../../services/session/io/packet-processor.js";
import {
  liveSession,
  loggedBusCallbacks,
  recordedFencedWrites,
  recordingBus,
} from "../helpers/live-session.js";

const ALICE = "alice@localhost";
/** A client's stream open (RFC 7395 §3.4). */
const STREAM_OPEN = `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>`;

describe("a unit's acknowledgement and its snapshot write", function () {
  let backend: Backend;
  let table: ConnectionTable;
  let processor: PacketProcessor;
  let stop: AbortController;
  let log: string[];
  const { ack, acknowledged } = loggedBusCallbacks(() => log);

  beforeEach(async () => {
    const config: Config = { ...DEFAULTS, shardCount: 4 };
    const base = createBackend(config, silentLogger);
    log = [];
    backend = { ...base, fenced: recordedFencedWrites(base.fenced, log) };
    const lease = (await backend.leases.acquire(0, "s1")) as Lease;
    stop = new AbortController();
    ({ table, processor } = liveSession(backend, config, () => lease, stop.signal));
  });

  afterEach(async () => {
    stop.abort();
    await backend.close();
  });

  const entry = (id: string, packet: ShardPacket): ShardEntry => ({ id, shard: 0, packet });

  it("carries the acknowledgement of a unit whose snapshot is its last write in that write", async () => {
    await processor.handleBatch(
      [entry("1-1", { k: "open", c: "e1.0.a", e: "e1" })],
      ack,
      acknowledged,
    );
    assert.deepEqual(log, ["snapshots+ack save=e1.0.a ack=1-1", "acknowledged 1-1"]);
  });

  it("joins the acknowledgements of a turn's units of one shard into its one snapshot write", async () => {
    await processor.handleBatch(
      [
        entry("1-1", { k: "open", c: "e1.0.a", e: "e1" }),
        entry("1-2", { k: "open", c: "e1.0.b", e: "e1" }),
      ],
      ack,
      acknowledged,
    );
    assert.deepEqual(log, [
      "snapshots+ack save=e1.0.a,e1.0.b ack=1-1,1-2",
      "acknowledged 1-1",
      "acknowledged 1-2",
    ]);
  });

  it("acknowledges through the bus when the bus cannot be told (no acknowledged callback)", async () => {
    await processor.handleBatch([entry("1-1", { k: "open", c: "e1.0.a", e: "e1" })], ack);
    assert.deepEqual(log, ["snapshots save=e1.0.a remove=", "ack 1-1"]);
  });

  it("acknowledges a resumption only after the old connection's snapshot is deleted (afterSave)", async () => {
    const old: ConnState = newConnState("e1.0.old", "e1", 0, Date.now());
    Object.assign(old, { stage: "bound", bareJid: ALICE, resource: "phone", available: true });
    old.sm = newSmState(0, true);
    assert.equal((await backend.routes.bind(ALICE, "phone", old.connId, 10)).ok, true);
    table.set(old);
    const d = JSON.stringify({ previd: old.sm.id, h: 0, jid: ALICE });
    await processor.handleBatch(
      [entry("2-1", { k: "resume", c: "e2.0.resuming", e: "e2", d })],
      ack,
      acknowledged,
    );
    const moved = table.successorOf(old.connId) as string;
    assert.ok(moved, "the session moved");
    assert.deepEqual(log, [
      `snapshots save=${moved} remove=`,
      `snapshots save= remove=${old.connId}`,
      "ack 2-1",
    ]);
  });

  describe("entries handed over in process (own-member-intake.ts)", () => {
    const inProcess = (id: string, packet: ShardPacket): ShardEntry => ({
      ...entry(id, packet),
      inProcess: true,
    });

    it("keeps a login of its own socket in memory until it binds: no snapshot, nothing acknowledged", async () => {
      await processor.handleBatch([inProcess("0-7", { k: "open", c: "e1.0.a", e: "e1" })], ack);
      await processor.handleBatch(
        [inProcess("0-8", { k: "data", c: "e1.0.a", e: "e1", d: STREAM_OPEN })],
        ack,
        acknowledged,
      );
      // The bus callbacks only: the intake's are no-ops. No snapshot was written.
      assert.deepEqual(log, ["ack 0-7", "ack 0-8"]);
      assert.equal(table.get("e1.0.a")?.stage, "opened");
      assert.equal(table.get("e1.0.a")?.lastEntryId, "0-0", "no inbox position taken");
      assert.equal(table.isUnsaved("e1.0.a"), true);
      assert.deepEqual(
        table.unsavedOf(0).map((c) => c.connId),
        ["e1.0.a"],
      );
      // A packet of it through the inbox (its shard was away a moment): saved, whole. (A
      // failed SASL attempt: counted in its state, which stays before the bind.)
      const badPlainAuth = `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${Buffer.from("\0nobody\0wrong").toString("base64")}</auth>`;
      await processor.handleBatch(
        [entry("9-1", { k: "data", c: "e1.0.a", e: "e1", d: badPlainAuth })],
        ack,
        acknowledged,
      );
      assert.equal(log[2], "snapshots+ack save=e1.0.a ack=9-1");
      assert.equal(table.isUnsaved("e1.0.a"), false);
    });

    it("saves a connection whose older snapshot exists, even in process before it binds", async () => {
      await processor.handleBatch([entry("5-1", { k: "open", c: "e1.0.b", e: "e1" })], ack);
      await processor.handleBatch(
        [inProcess("0-9", { k: "data", c: "e1.0.b", e: "e1", d: STREAM_OPEN })],
        ack,
      );
      assert.deepEqual(log, [
        "snapshots save=e1.0.b remove=",
        "ack 5-1",
        "snapshots save=e1.0.b remove=",
        "ack 0-9",
      ]);
      assert.equal(table.isUnsaved("e1.0.b"), false);
    });

    it("neither moves the connection's inbox position nor is skipped by it", async () => {
      await processor.handleBatch([entry("5-1", { k: "open", c: "e1.0.a", e: "e1" })], ack);
      // Its id "0-9" is below 5-1: an inbox entry with it would be taken for a repeat.
      await processor.handleBatch(
        [inProcess("0-9", { k: "data", c: "e1.0.a", e: "e1", d: STREAM_OPEN })],
        ack,
      );
      const conn = table.get("e1.0.a") as ConnState;
      assert.equal(conn.stage, "opened", "applied");
      assert.equal(conn.lastEntryId, "5-1", "the inbox position stays");
      // A later inbox entry above 5-1 is applied (a close from the edge, through the inbox).
      await processor.handleBatch(
        [entry("6-1", { k: "close", c: "e1.0.a", e: "e1", d: "client" })],
        ack,
      );
      assert.equal(table.get("e1.0.a"), undefined, "closed by the inbox entry after it");
    });

    it("takes a packet that comes through the inbox after its in-process application was stored for a repeat", async () => {
      await processor.handleBatch([entry("5-1", { k: "open", c: "e1.0.c", e: "e1" })], ack);
      const frame = { k: "data" as const, c: "e1.0.c", e: "e1", d: STREAM_OPEN };
      await processor.handleBatch([inProcess("0-20", frame)], ack);
      const opened = table.get("e1.0.c") as ConnState;
      assert.equal(opened.stage, "opened");
      assert.equal(opened.lastInProcessId, "0-20");
      const streamId = opened.streamId;
      // Its member failed to finish it (the reply of the snapshot write lost, say): through
      // the inbox, naming its in-process id. Applied again, it would open a second stream.
      await processor.handleBatch([entry("6-1", { ...frame, i: "0-20" })], ack);
      assert.equal(table.get("e1.0.c")?.streamId, streamId, "not applied twice");
      // A later one of the same socket, not applied here, is applied.
      await processor.handleBatch([entry("6-2", { ...frame, i: "0-21" })], ack);
      assert.notEqual(table.get("e1.0.c")?.streamId, streamId, "applied");
    });

    it("applies a packet first handed over in process with the origins it had there (i)", async () => {
      const written: EdgePacket[] = [];
      const bus = recordingBus(backend.bus, { toEdge: (packet) => written.push(packet) });
      const lease = (await backend.leases.acquire(1, "s1")) as Lease;
      const session = liveSession(
        { ...backend, bus },
        { ...DEFAULTS, shardCount: 4 },
        () => lease,
        stop.signal,
      );
      const conn = newConnState("e1.1.a", "e1", 1, Date.now());
      Object.assign(conn, { stage: "bound", bareJid: ALICE, resource: "phone" });
      session.table.set(conn);
      const ping = (id: string) =>
        `<iq xmlns="jabber:client" type="get" id="${id}"><ping xmlns="urn:xmpp:ping"/></iq>`;
      const at = (id: string, packet: ShardPacket): ShardEntry => ({ id, shard: 1, packet });
      await session.processor.handleBatch(
        [at("7-1", { k: "data", c: conn.connId, e: "e1", d: ping("p1"), i: "0-42" })],
        ack,
      );
      await session.processor.handleBatch(
        [at("7-2", { k: "data", c: conn.connId, e: "e1", d: ping("p2") })],
        ack,
      );
      assert.deepEqual(
        written.map((p) => (p.k === "data" ? p.o : p.k)),
        [`${conn.connId}|0-42|0`, `${conn.connId}|7-2|0`],
      );
    });
  });
});
