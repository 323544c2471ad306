// RFC 6121 §8 per-recipient order when the pinger ends an expired XEP-0198 session: the
// stanzas the client never acknowledged are stored offline before a stanza routed to the
// session while it was being ended. CI once saw m-6 stored before m-4 and m-5 after a session
// kill: the pinger released the connection's turn before ending it had stored anything, and
// the route was applied meanwhile. The real LiveContext, connection table, packet processor,
// pinger tick and stores on a private Redis; the test holds the read of the unacknowledged
// stanzas open so that the route arrives exactly in that window.
import assert from "node:assert/strict";
import { newConnState, type ConnState } from "../../services/session/core/connection.js";
import { newSmState } from "../../services/session/features/sm/sm-state.js";
import { PingSchedule, pingTick } from "../../services/session/io/client-pinger.js";
import { createAccount } from "../../services/session/core/sasl/sasl-credentials.js";
import type { Backend } from "../../services/shared/wiring.js";
import {
  liveSessionOnShard0,
  messageFromBob,
  shard0Entry,
  type LiveSession,
} from "../helpers/live-session.js";
import { startRedis, type RedisServer } from "../helpers/redis-server.js";

const ALICE = "alice@localhost";
const CONN = "e1.0.phone";
const message = (n: number) => messageFromBob(`${ALICE}/phone`, n);

describe("pinger: an expired XEP-0198 session's unacknowledged stanzas stay in order", function () {
  this.timeout(20000);
  let server: RedisServer;
  let db = 0;
  let backend: Backend;
  let session: LiveSession;
  let stop: AbortController;

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });

  beforeEach(async () => {
    stop = new AbortController();
    const live = await liveSessionOnShard0(`${server.url}/${++db}`, stop.signal);
    ({ backend } = live);
    session = live;
    await backend.accounts.create(ALICE, createAccount("pw", live.config.scramIterations));
  });

  afterEach(async () => {
    stop.abort();
    await backend.close();
  });

  it("stores a stanza routed while the session is being ended after the ones it never acknowledged", async () => {
    // Alice's session hibernates past its deadline with m4 and m5 sent and not acknowledged.
    const conn: ConnState = newConnState(CONN, "e1", 0, Date.now());
    Object.assign(conn, { stage: "bound", bareJid: ALICE, resource: "phone", available: true });
    conn.sm = newSmState(0, true);
    for (const n of [4, 5]) await backend.smQueues.push(0, conn.sm.id, n - 3, message(n));
    Object.assign(conn.sm, { sent: 2, acked: 0, hibernateUntilMs: Date.now() - 1 });
    assert.equal((await backend.routes.bind(ALICE, "phone", CONN, 10)).ok, true);
    session.table.set(conn);

    // The read of the unacknowledged stanzas waits until the route below has been offered.
    const range = backend.smQueues.range.bind(backend.smQueues);
    let releaseRange!: () => void;
    const rangeReleased = new Promise<void>((resolve) => (releaseRange = resolve));
    let rangeEntered!: () => void;
    const rangeReached = new Promise<void>((resolve) => (rangeEntered = resolve));
    backend.smQueues.range = async (...args) => {
      rangeEntered();
      await rangeReleased;
      return range(...args);
    };
    // When the route's own work starts (its turn for the connection).
    let routeStarted = false;
    const withConn = session.table.withConn.bind(session.table);
    let turns = 0;
    session.table.withConn = (connId, work) =>
      withConn(connId, () => {
        if (connId === CONN && ++turns === 2) routeStarted = true;
        return work();
      });

    const schedule = new PingSchedule(session.ctx.config, 100, Date.now() - 1000);
    schedule.watch(CONN);
    const tick = pingTick(session.ctx, session.table, schedule);
    await rangeReached;
    const routed = session.processor.handleBatch([
      shard0Entry("2-1", { k: "route", c: CONN, d: message(6) }),
    ]);
    // Every reaction already due has run (microtasks come before the next macrotask): a route
    // applied now would be stored before m4 and m5, whatever their writes' timing.
    await new Promise((resolve) => setImmediate(resolve));
    const appliedWhileEnding = routeStarted;
    releaseRange();
    assert.deepEqual(await tick, [CONN]);
    await routed;

    const stored = (await backend.offline.peek(ALICE)).map((xml) => /id="(m\d+)"/.exec(xml)?.[1]);
    console.log(`      offline, in order: ${stored.join(", ")}`);
    assert.equal(appliedWhileEnding, false, "the route waited for the ending's turn");
    assert.deepEqual(stored, ["m4", "m5", "m6"]);
    assert.equal(session.table.get(CONN), undefined, "the session ended");
  });
});
