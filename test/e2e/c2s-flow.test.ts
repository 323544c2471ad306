// TCP c2s under the same flow rules as WebSocket (DESIGN.md "Flow control", failure model): a
// TCP client that stops reading is closed as a slow consumer, and a draining edge ends its TCP
// streams unfinished (no stream error, no </stream:stream>) so clients resume elsewhere.
import assert from "node:assert/strict";
import { Mesh, metricValue, type EdgeProcess } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { RawTcpClient, hasStreamError } from "../helpers/raw-tcp-client.js";
import { freePort } from "../helpers/redis-server.js";
import { TestUser, loginAs, xml } from "../helpers/xmpp-client.js";

const MESSAGES = 640;
/** 640 × 16 KiB: 10 MiB for a client that does not read. */
const PADDING = "x".repeat(16 * 1024);

describe("e2e: TCP c2s flow control and drain", function () {
  this.timeout(90000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  let c2sPort: number;
  const users: TestUser[] = [];

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({
      shardCount: 4,
      env: {
        // alice may send 10 MiB at once.
        MEGAPHONE_INBOUND_BYTES_PER_SECOND: String(64 * 1024 * 1024),
        MEGAPHONE_INBOUND_BURST_BYTES: String(64 * 1024 * 1024),
      },
    });
    await mesh.session("s1", "");
    c2sPort = await freePort();
    edge = await mesh.edge("e1", "", {
      MEGAPHONE_C2S_PORT: String(c2sPort),
      MEGAPHONE_C2S_REQUIRE_TLS: "false",
    });
    for (const name of ["alice", "bob", "carol"])
      await mesh.addUser(`${name}@localhost`, `${name}-pw`);
  });

  after(async () => {
    for (const user of users) await user.stop();
    await mesh?.stop();
  });

  const closes = (reason: string) =>
    metricValue(edge.port, `megaphone_edge_closes_total{reason="${reason}"}`).then((v) =>
      Number.isNaN(v) ? 0 : v,
    );

  it("closes a TCP client that stops reading as a slow consumer; others go on", async () => {
    const bob = await RawTcpClient.connect(c2sPort);
    const bobJid = await bob.login("bob", "bob-pw");
    const alice = await loginAs(users, edge.url, "alice");
    const before = await closes("slow-consumer");
    bob.pauseReading();
    for (let i = 0; i < MESSAGES; i++)
      await alice.send(
        xml("message", { to: bobJid, type: "chat", id: `m-${i}` }, xml("body", {}, PADDING)),
      );
    await until(
      async () => (await closes("slow-consumer")) > before,
      "the edge to close bob as a slow consumer",
      30000,
    );
    // What the edge had written reaches bob when he reads again, then the error and the end.
    bob.resumeReading();
    await bob.waitText(hasStreamError("resource-constraint"), "resource-constraint", 20000);
    await bob.waitClosed(10000);
    assert.equal((await alice.ping()).attrs.type, "result");
  });

  it("drains: SIGTERM ends TCP streams unfinished (no stream error, no </stream:stream>)", async () => {
    const carol = await RawTcpClient.connect(c2sPort);
    await carol.login("carol", "carol-pw");
    const afterLogin = carol.text.length;
    await edge.stop("SIGTERM");
    await carol.waitClosed(10000);
    const tail = carol.text.slice(afterLogin);
    assert.ok(!tail.includes("<stream:error"), tail);
    assert.ok(!tail.includes("</stream:stream>"), tail);
  });
});
