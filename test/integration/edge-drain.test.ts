// A stopping edge drains gradually (edge/drain.ts, issue 7): /readyz and upgrades answer 503 at
// once, the sockets stay open for drainDelayMs, then close in even slices over drainWindowMs,
// each with 1001 and no stream error or <close/> (a lost transport a client may resume from),
// each reported to its session as `drain`; hurry() or the end of the grace closes the rest at
// once. A real edge on a RedisBus; the test plays the session tier (edge-harness.ts).
import assert from "node:assert/strict";
import { drainSliceCount } from "../../services/edge/drain.js";
import { edgeSuite, type HarnessClient, type TestEdge } from "../helpers/edge-harness.js";
import { report } from "../helpers/report.js";
import { TestClient } from "../helpers/ws-client.js";

const CLIENTS = 10;
const DELAY_MS = 400;
const WINDOW_MS = 1000;

async function connectAll(edge: TestEdge, n: number): Promise<HarnessClient[]> {
  const clients: HarnessClient[] = [];
  for (let i = 0; i < n; i++) clients.push(await edge.connect());
  return clients;
}

/** When each client saw its socket close, in ms after `since`, sorted. */
function closeTimes(clients: HarnessClient[], since: number): Promise<number[]> {
  return Promise.all(clients.map(({ client }) => client.closed.then(() => Date.now() - since)));
}

describe("edge drain (uWebSockets.js on a RedisBus)", () => {
  const suite = edgeSuite();

  it("fails /readyz and refuses upgrades at once, then closes the sockets spread over the window", async () => {
    const edge = await suite.start({ drainDelayMs: DELAY_MS, drainWindowMs: WINDOW_MS });
    const clients = await connectAll(edge, CLIENTS);
    const started = Date.now();
    const times = closeTimes(clients, started);
    const stopped = edge.handle.stop();

    assert.equal((await edge.get("/readyz")).status, 503);
    assert.equal(await edge.refusedStatus(), 503);
    const openAfterRefusals = clients.filter(({ client }) => client.isOpen).length;
    assert.equal(openAfterRefusals, CLIENTS, "a socket closed before the delay was over");

    await stopped;
    const sorted = (await times).sort((a, b) => a - b);
    const slices = drainSliceCount(WINDOW_MS);
    report(`closes at ${sorted.join(",")} ms after stop (${slices} slices)`);
    assert.ok(sorted[0] >= DELAY_MS - 20, `first close ${sorted[0]} ms after stop`);
    const span = sorted[CLIENTS - 1] - sorted[0];
    assert.ok(span >= WINDOW_MS / 2, `closes span ${span} ms`);
    // One per slice (10 over 10 slices): no two within a third of a slice.
    for (let i = 1; i < CLIENTS; i++)
      assert.ok(sorted[i] - sorted[i - 1] >= 30, `closes ${i - 1} and ${i} bunched`);
    for (const { client, connId } of clients) {
      assert.deepEqual(await client.closed, { code: 1001, reason: "drain" });
      assert.deepEqual(client.messages, [], "no stream error, no <close/>");
      assert.equal((await edge.session.closeOf(connId)).d, "drain");
    }
    assert.equal(edge.handle.connections(), 0);
    await assert.rejects(
      TestClient.connect(edge.wsUrl),
      "the listen socket is closed after the drain",
    );
  });

  it("closes what is left at once when hurried (a second SIGTERM)", async () => {
    const edge = await suite.start({ drainDelayMs: 100, drainWindowMs: 10000 });
    const clients = await connectAll(edge, CLIENTS);
    const started = Date.now();
    const times = closeTimes(clients, started);
    const stopped = edge.handle.stop();
    await Promise.race(clients.map(({ client }) => client.closed));
    const hurriedAt = Date.now() - started;
    edge.handle.hurry();
    await stopped;
    const sorted = (await times).sort((a, b) => a - b);
    report(`hurried at ${hurriedAt} ms; closes at ${sorted.join(",")} ms`);
    assert.ok(sorted[CLIENTS - 1] - hurriedAt < 300, "the rest closed at once");
    for (const { client } of clients)
      assert.deepEqual(await client.closed, { code: 1001, reason: "drain" });
  });

  it("closes what is left at once when the grace runs out", async () => {
    const edge = await suite.start({ drainDelayMs: 100, drainWindowMs: 10000 });
    const clients = await connectAll(edge, CLIENTS);
    const started = Date.now();
    const times = closeTimes(clients, started);
    await edge.handle.stop(800);
    const sorted = (await times).sort((a, b) => a - b);
    report(`closes at ${sorted.join(",")} ms (grace 800 ms)`);
    assert.ok(sorted[CLIENTS - 1] < 1100, `last close ${sorted[CLIENTS - 1]} ms after stop`);
    assert.ok(Date.now() - started < 1500, "stop kept to its grace");
  });
});
