// The edge's in-process writer (in-process-edge-bus.ts, edge/ws/outbound.ts writeInProcess):
// the frames this process's own session writes to an open connection go straight to its
// socket; a closed connection's go through the inbox, where the reader gives them back as
// undelivered, as before; and a frame that reaches the inbox from another writer for a
// connection written to in process turns in-process writes off. A real edge whose bus is the
// in-process bus over a RedisBus; the test plays the session tier (edge-harness.ts) from the
// same process, through that bus.
import assert from "node:assert/strict";
import { InProcessEdgeBus } from "../../services/shared/bus/in-process-edge-bus.js";
import type { EdgePacket } from "../../services/shared/bus/packets.js";
import { edgeSuite, type TestEdge } from "../helpers/edge-harness.js";
import { until } from "../helpers/poll.js";
import { monitorRedis } from "../helpers/redis-monitor.js";
import { connect } from "../helpers/redis-server.js";

describe("edge: writes of this process's own session, in process", () => {
  const suite = edgeSuite();
  let inProcess: InProcessEdgeBus;

  async function start(): Promise<TestEdge> {
    return suite.start({}, { edgeBus: (bus) => (inProcess = new InProcessEdgeBus(bus)) });
  }

  /** Frames in the edge's Redis inbox (its creation marker aside). */
  async function inboxFrames(edge: TestEdge): Promise<number> {
    const admin = connect(suite.redisUrl);
    try {
      const entries = await admin.xrange(edge.keys.edgeInbox(edge.handle.address), "-", "+");
      return entries.filter(([, fields]) => fields[1] !== "inbox-created").length;
    } finally {
      admin.disconnect();
    }
  }

  const frame = (c: string, n: number): EdgePacket => ({ k: "data", c, d: `<f n="${n}"/>` });

  it("writes an open connection's frames straight to its socket, none through the inbox", async () => {
    const edge = await start();
    const { client, connId } = await edge.connect();
    for (let n = 1; n <= 3; n++)
      assert.equal(await inProcess.toEdge(edge.handle.address, frame(connId, n)), true);
    assert.deepEqual(
      await client.waitForMessages(3),
      [1, 2, 3].map((n) => `<f n="${n}"/>`),
    );
    assert.equal(await inboxFrames(edge), 0);
  });

  it("sends a closed connection's frames through the inbox, which gives them back as undelivered", async () => {
    const edge = await start();
    const { client, connId } = await edge.connect();
    client.close();
    await edge.session.closeOf(connId);
    assert.equal(await inProcess.toEdge(edge.handle.address, frame(connId, 1)), true);
    await until(
      () => edge.session.packetsOf(connId).some((p) => p.k === "undelivered"),
      "the frame given back as undelivered",
    );
    assert.deepEqual(
      edge.session.packetsOf(connId).find((p) => p.k === "undelivered"),
      { k: "undelivered", c: connId, e: edge.handle.address, d: '<f n="1"/>' },
    );
  });

  it("stops writing in process once another writer's frame for such a connection comes through the inbox", async () => {
    const edge = await start();
    const { client, connId } = await edge.connect();
    await inProcess.toEdge(edge.handle.address, frame(connId, 1));
    // Another process's session writing to this edge, through Redis.
    await edge.bus.toEdge(edge.handle.address, frame(connId, 2));
    await client.waitForMessages(2);
    // Redis's own view of the third write (the reader trims what it read, so the inbox's
    // length would not tell).
    const inboxKey = edge.keys.edgeInbox(edge.handle.address);
    let throughInbox = 0;
    const monitor = await monitorRedis(suite.redisUrl, ({ args }) => {
      if (args[0]?.toLowerCase() === "xadd" && args[1] === inboxKey) throughInbox++;
    });
    try {
      await inProcess.toEdge(edge.handle.address, frame(connId, 3));
      assert.deepEqual(
        await client.waitForMessages(3),
        [1, 2, 3].map((n) => `<f n="${n}"/>`),
      );
    } finally {
      monitor.stop();
    }
    assert.equal(throughInbox, 1, "the third frame went through the inbox");
  });
});
