// Issue 7: session processes with `--membership kubernetes`. NO KUBERNETES CLUSTER IS INVOLVED:
// the processes watch a fake API server (test/helpers/fake-kube-api.ts), a local HTTP server that
// speaks the real list/watch protocol for EndpointSlices; the test plays the kubelet and the
// EndpointSlice controller by marking pods ready or not. Everything else is real: Redis, edge
// and session processes, @xmpp/client users. What is shown: a pod that turns unready loses its
// shards at once (a planned handover, long before its leases could lapse), and no message is
// lost, duplicated or reordered by it.
import assert from "node:assert/strict";
import { ChatLoad, formatReport } from "../helpers/chat-load.js";
import { Mesh, metricValue, type SessionProcess } from "../helpers/cluster.js";
import { FakeKubeApi } from "../helpers/fake-kube-api.js";
import { until } from "../helpers/poll.js";
import { Running } from "../helpers/running.js";
import { TestUser } from "../helpers/xmpp-client.js";

const SHARDS = 16;
const NAMESPACE = "megaphone";
const SERVICE = "megaphone-session";
/** The default lease time: a move faster than this did not wait for any lease to lapse. */
const LEASE_TTL_MS = 5000;

function served(session: SessionProcess): Promise<number> {
  return metricValue(session.httpPort, "megaphone_session_shards_served");
}

describe("e2e: kubernetes membership, against a fake API server (no cluster)", function () {
  this.timeout(60000);
  let api: FakeKubeApi;
  let mesh: Mesh;
  const users: TestUser[] = [];
  const running = new Running();

  before(async () => {
    api = await FakeKubeApi.start();
    mesh = await Mesh.start({
      shardCount: SHARDS,
      env: {
        MEGAPHONE_MEMBERSHIP: "kubernetes",
        MEGAPHONE_KUBERNETES_NAMESPACE: NAMESPACE,
        MEGAPHONE_KUBERNETES_SESSION_SERVICE: SERVICE,
        MEGAPHONE_KUBERNETES_API_URL: api.url,
        MEGAPHONE_SHARD_LEASE_TTL_MS: String(LEASE_TTL_MS),
      },
    });
  });

  afterEach(() => running.stopAll());

  after(async () => {
    // Dropped, not closed: a graceful close races the stanzas still arriving (@xmpp/client
    // throws on data that arrives while it stops).
    for (const u of users) u.kill();
    await mesh?.stop();
    await api?.stop();
  });

  it("moves an unready pod's shards at once, with every message delivered once and in order", async () => {
    api.putSlice(NAMESPACE, "session-a", SERVICE, [
      { pod: "s1", ready: true },
      { pod: "s2", ready: true },
    ]);
    const [s1, s2] = await Promise.all([mesh.session("s1", ""), mesh.session("s2", "")]);
    await until(
      async () => (await served(s1)) + (await served(s2)) === SHARDS && (await served(s2)) > 0,
      "both ready pods serving",
      15000,
    );
    const split = [await served(s1), await served(s2)];

    const edge = await mesh.edge("e1", "");
    const names = Array.from({ length: 16 }, (_, i) => `k${i}`);
    await mesh.addUsers(names.map((n) => ({ jid: `${n}@localhost`, password: `${n}-pw` })));
    const logged = await Promise.all(
      names.map((n) => TestUser.connect({ service: edge.url, username: n, password: `${n}-pw` })),
    );
    users.push(...logged);
    const pairs: [TestUser, TestUser][] = [];
    for (let i = 0; i < logged.length; i += 2) pairs.push([logged[i], logged[i + 1]]);
    const load = running.add(new ChatLoad(pairs));
    load.start(100);
    await until(() => load.sent >= 160, "messages flowing", 20000);

    // The kubelet: s2's readiness probe fails.
    api.putSlice(NAMESPACE, "session-a", SERVICE, [
      { pod: "s1", ready: true },
      { pod: "s2", ready: false },
    ]);
    const unreadyAt = Date.now();
    await until(async () => (await served(s1)) === SHARDS, "s1 serving every shard", 10000);
    const movedMs = Date.now() - unreadyAt;
    assert.equal(await served(s2), 0);
    await until(() => load.sent >= 480, "more messages", 20000);
    const report = await load.report();
    console.log(
      `      shards ${split.join(" + ")}; s2 unready → s1 serves all ${SHARDS} after ${movedMs} ms (lease ${LEASE_TTL_MS} ms)`,
    );
    console.log(`      ${formatReport("kubernetes unready", report)}`);
    assert.ok(movedMs < LEASE_TTL_MS, `the move took ${movedMs} ms: it waited for the leases`);
    assert.equal(report.missing, 0);
    assert.equal(report.duplicates, 0);
    assert.equal(report.outOfOrder, 0);
    assert.equal(report.disconnected, 0);
  });
});
