// Issue 6 item 4: a burst of PLAIN logins, each a full PBKDF2 at the default scramIterations,
// against one real session process (startSession over Redis, test/helpers/session-harness.ts).
// Before the fix, more than 4 derivations at once got temporary-auth-failure. The chat between
// two users already logged in is measured during the burst and printed; its bound is generous
// on purpose (2 shared cores): how far a burst may delay others is the packet processor's.
import assert from "node:assert/strict";
import { DEFAULTS } from "../../services/shared/config.js";
import { createAccount } from "../../services/session/core/sasl/sasl-credentials.js";
import { startRedis, type RedisServer } from "../helpers/redis-server.js";
import { OPEN_FRAME, SessionHarness, plainAuth } from "../helpers/session-harness.js";

const BURST_LOGINS = 200;
/** What a chat message may take during the burst before the test fails. */
const CHAT_LATENCY_BOUND_MS = 5000;

describe("a burst of PLAIN logins (issue 6 item 4)", function () {
  this.timeout(60000);
  let server: RedisServer;
  let harness: SessionHarness;

  before(async () => {
    server = await startRedis();
    harness = await SessionHarness.create({
      redis: server.url,
      // The real cost of each login: the default iteration count, not the harness's cheaper one.
      config: { scramIterations: DEFAULTS.scramIterations },
    });
    await harness.startSession();
  });

  after(async () => {
    await harness?.stop();
    await server?.stop();
  });

  it(`authenticates ${BURST_LOGINS} PLAIN logins sent at one instant, while a chat goes on`, async () => {
    // One account for every burst user (same password, so one derivation to create it).
    const account = createAccount("burst-pw", harness.config.scramIterations);
    await Promise.all(
      Array.from({ length: BURST_LOGINS }, (_, i) =>
        harness.backend.accounts.create(`u${i}@localhost`, account),
      ),
    );
    await harness.addUser("alice@localhost", "alice-pw");
    await harness.addUser("bob@localhost", "bob-pw");
    const alice = harness.connId(0);
    const bob = harness.connId(1);
    await harness.login(alice, "alice", "alice-pw", "chat");
    await harness.login(bob, "bob", "bob-pw", "chat");

    /** Alice writes to Bob; resolves with the time until Bob's edge got it. */
    let serial = 0;
    async function chat(): Promise<number> {
      const body = `m${++serial}`;
      const sent = Date.now();
      await harness.send(
        alice,
        `<message xmlns="jabber:client" to="bob@localhost/chat" type="chat"><body>${body}</body></message>`,
      );
      await harness.waitFrame(bob, (f) => f.includes(`<body>${body}</body>`), body, 20000);
      return Date.now() - sent;
    }
    const quiet: number[] = [];
    for (let n = 0; n < 5; n++) quiet.push(await chat());

    // Every burst connection opened and shown its features first, so the logins alone collide.
    const burst = Array.from({ length: BURST_LOGINS }, (_, i) => harness.connId(i % 4));
    await Promise.all(burst.map((c) => harness.open(c)));
    await Promise.all(burst.map((c) => harness.send(c, OPEN_FRAME)));
    await Promise.all(
      burst.map((c) => harness.waitFrame(c, (f) => f.includes("<mechanism>PLAIN<"), "features")),
    );

    const outcomes = burst.map((c) =>
      harness.waitFrame(c, (f) => f.startsWith("<success") || f.startsWith("<failure"), "outcome"),
    );
    let doneAt: number | undefined;
    const finished = Promise.all(outcomes).finally(() => (doneAt = Date.now()));
    finished.catch(() => undefined); // awaited below, after the chat
    const started = Date.now();
    await Promise.all(burst.map((c, i) => harness.send(c, plainAuth(`u${i}`, "burst-pw"))));

    // Alice goes on writing to Bob, one message at a time, until every login has its answer.
    const latencies: number[] = [];
    while (doneAt === undefined || latencies.length < 3) latencies.push(await chat());
    const results = await finished;
    const burstMs = (doneAt ?? started) - started;

    const failures = results.filter((f) => !f.startsWith("<success"));
    assert.deepEqual(failures, [], `${failures.length} of ${BURST_LOGINS} logins failed`);
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
    const max = Math.max(...latencies);
    // Printed for the reader (the issue asks to see it); only the bound below is asserted.
    process.stdout.write(
      `      ${BURST_LOGINS} PLAIN logins (${harness.config.scramIterations} iterations) in ${burstMs} ms;` +
        ` chat latency quiet: median ${median(quiet)} ms; during the burst: ${latencies.length}` +
        ` messages, median ${median(latencies)} ms, max ${max} ms\n`,
    );
    assert.ok(max < CHAT_LATENCY_BOUND_MS, `a chat message took ${max} ms during the burst`);
  });
});
