// /readyz tells Kubernetes whether a process can serve: 200 only while it is connected to
// Redis and its read loops complete reads. /healthz stays 200 while the process runs. A Redis
// that lost its data (FLUSHALL) costs a re-login, never a mesh that stays quietly dead.
import assert from "node:assert/strict";
import { until } from "../helpers/poll.js";
import { Mesh, type EdgeProcess, type SessionProcess } from "../helpers/cluster.js";
import { connectAdmin, restoreDefault, revokeFromDefault } from "../helpers/redis-admin.js";
import { RawClient } from "../helpers/raw-client.js";
import { TestUser, isMessageFrom, xml } from "../helpers/xmpp-client.js";

async function status(url: string): Promise<number> {
  try {
    return (await fetch(url)).status;
  } catch {
    return 0;
  }
}

/** Until `url` answers `expected` (bounded); there is no event to await across processes. */
function answers(url: string, expected: number): Promise<void> {
  return until(async () => (await status(url)) === expected, `${url} → ${expected}`, 15000, 50);
}

describe("e2e: readiness follows Redis", function () {
  this.timeout(40000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  let session: SessionProcess;

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({ shardCount: 4, env: { MEGAPHONE_READINESS_STALE_MS: "1000" } });
    session = await mesh.session("s1", "");
    edge = await mesh.edge("e1", "");
  });

  after(async () => mesh?.stop());

  it("turns /readyz to 503 when Redis goes away, keeps /healthz at 200, and recovers", async () => {
    const edgeReady = `http://127.0.0.1:${edge.port}/readyz`;
    const sessionReady = `http://127.0.0.1:${session.httpPort}/readyz`;
    // Awaited, not assumed: on a loaded machine a read loop may just have gone past the
    // (small, in this test) staleness bound.
    await answers(edgeReady, 200);
    await answers(sessionReady, 200);

    await mesh.pauseRedis();
    await answers(edgeReady, 503);
    await answers(sessionReady, 503);
    assert.equal(await status(`http://127.0.0.1:${edge.port}/healthz`), 200);
    assert.equal(await status(`http://127.0.0.1:${session.httpPort}/healthz`), 200);

    await mesh.resumeRedis();
    await answers(edgeReady, 200);
    await answers(sessionReady, 200);
  });

  it("turns /readyz to 503 while a read loop fails, though Redis answers, and back to 200", async () => {
    const edgeReady = `http://127.0.0.1:${edge.port}/readyz`;
    const sessionReady = `http://127.0.0.1:${session.httpPort}/readyz`;
    const admin = await connectAdmin(mesh.redis.url);
    try {
      await revokeFromDefault(admin, "xreadgroup");
      await answers(sessionReady, 503);
      await restoreDefault(admin);
      await answers(sessionReady, 200);

      await revokeFromDefault(admin, "xread");
      await answers(edgeReady, 503);
      await restoreDefault(admin);
      await answers(edgeReady, 200);
    } finally {
      await restoreDefault(admin);
      admin.disconnect();
    }
  });

  it("recreates lost consumer groups and inboxes after FLUSHALL: a re-added user logs in and chats", async () => {
    // carol is logged in when Redis loses everything: her session state and route are gone, so
    // her socket must not stay open unreachable; the edge closes it and she logs in again.
    await mesh.addUser("carol@localhost", "carol-pw");
    const carol = await RawClient.connect(edge.url);
    await carol.login("carol", "carol-pw");
    const admin = await connectAdmin(mesh.redis.url);
    const started = Date.now();
    try {
      await admin.flushall();
    } finally {
      admin.disconnect();
    }
    const closed = await carol.waitClosed(10000);
    assert.ok(closed.code === 1011 || closed.code === 1000, `carol closed with ${closed.code}`);
    await mesh.addUser("alice@localhost", "alice-pw");
    await mesh.addUser("bob@localhost", "bob-pw");
    // As real clients do: a connection the mesh ends while it settles is simply made again
    // (sessions end the connections of edges whose liveness marks the flush removed).
    let attempts = 0;
    await until(
      async () => {
        attempts++;
        return chatOnce(edge.url).catch(() => false);
      },
      "alice and bob chatting after the flush",
      15000,
      0,
    );
    const elapsedMs = Date.now() - started;
    console.log(
      `      FLUSHALL → re-added users chatting after ${elapsedMs} ms (${attempts} attempts)`,
    );
    assert.equal(await status(`http://127.0.0.1:${session.httpPort}/readyz`), 200);
    assert.equal(await status(`http://127.0.0.1:${edge.port}/readyz`), 200);
  });
});

/** alice and bob log in through `service` and alice's message reaches bob; true if it did. */
async function chatOnce(service: string): Promise<boolean> {
  const alice = await TestUser.connect({ service, username: "alice", password: "alice-pw" });
  try {
    const bob = await TestUser.connect({ service, username: "bob", password: "bob-pw" });
    try {
      await bob.send(xml("presence"));
      await bob.ping(); // available before alice writes (else her message is stored offline)
      await alice.send(
        xml("message", { to: "bob@localhost", type: "chat" }, xml("body", {}, "after the flush")),
      );
      await bob.waitFor(isMessageFrom("alice@localhost", "after the flush"), "alice's message");
      return true;
    } finally {
      await bob.stop();
    }
  } finally {
    await alice.stop();
  }
}
