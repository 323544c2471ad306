// Issue 7: a rolling update of the whole mesh under load. Each edge in turn is stopped with
// SIGTERM (it drains: readiness first, then its sockets closed a few at a time as lost
// transports, 1001, no stream error) and started again; then each session member. The clients
// are @xmpp/client users with XEP-0198 enabled: when their socket goes they reconnect through an
// edge that is up and resume their session there. Every chat message is counted: delivered once,
// in order, none missing. Real Redis, real processes, real clients.
import assert from "node:assert/strict";
import { delay } from "../../services/shared/async/delay.js";
import { ChatLoad, formatReport } from "../helpers/chat-load.js";
import { Mesh, metricValue, type EdgeProcess, type SessionProcess } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { Running } from "../helpers/running.js";
import { TestUser } from "../helpers/xmpp-client.js";

const SHARDS = 8;

interface Resumable {
  streamManagement: { enabled: boolean; on(event: "resumed", listener: () => void): void };
  options: { service: string };
  reconnect: { reconnect(): Promise<void> };
}

/** Served shards of each session, summed. */
async function servedTotal(sessions: SessionProcess[]): Promise<number> {
  const counts = await Promise.all(
    sessions.map((s) => metricValue(s.httpPort, "megaphone_session_shards_served")),
  );
  return counts.reduce((a, b) => a + b, 0);
}

describe("e2e: rolling restart of every edge and session under load (issue 7)", function () {
  this.timeout(180000);
  let mesh: Mesh;
  const users: TestUser[] = [];
  /** Set at the end: the clients stop reconnecting. */
  let finished = false;
  const running = new Running();

  afterEach(() => running.stopAll());

  after(async () => {
    finished = true;
    for (const u of users) u.kill();
    await mesh?.stop();
  });

  it("loses and duplicates nothing while clients resume through the edges that are up", async () => {
    mesh = await Mesh.start({
      shardCount: SHARDS,
      env: {
        MEGAPHONE_SHARD_LEASE_TTL_MS: "2000",
        MEGAPHONE_MEMBERSHIP_HEARTBEAT_INTERVAL_MS: "250",
        MEGAPHONE_MEMBERSHIP_TTL_MS: "1000",
        MEGAPHONE_DRAIN_DELAY_MS: "200",
        MEGAPHONE_DRAIN_WINDOW_MS: "1000",
        MEGAPHONE_SHUTDOWN_GRACE_MS: "8000",
        MEGAPHONE_RESUMPTION_TIMEOUT_MS: "60000",
      },
    });
    const sessionIds = ["s1", "s2"];
    let sessions = await Promise.all(sessionIds.map((id) => mesh.session(id, "")));
    const edgeIds = ["e1", "e2"];
    const edges = new Map<string, EdgeProcess>();
    for (const id of edgeIds) edges.set(id, await mesh.edge(id, ""));
    /** Edges taking new connections: not the one being restarted. */
    const live = new Set(edgeIds);
    const liveUrls = () => [...live].map((id) => (edges.get(id) as EdgeProcess).url);

    const names = Array.from({ length: 20 }, (_, i) => `r${i}`);
    await mesh.addUsers(names.map((n) => ({ jid: `${n}@localhost`, password: `${n}-pw` })));
    const logged = await Promise.all(
      names.map((n, i) =>
        TestUser.connect({
          service: liveUrls()[i % 2],
          username: n,
          password: `${n}-pw`,
        }),
      ),
    );
    users.push(...logged);
    let resumptions = 0;
    for (const user of logged) {
      const xmpp = user.xmpp as unknown as Resumable;
      await until(() => xmpp.streamManagement.enabled, "stream management enabled");
      xmpp.streamManagement.on("resumed", () => resumptions++);
      let resuming = false;
      user.xmpp.on("disconnect", () => {
        if (resuming) return;
        resuming = true;
        void (async () => {
          // Through any edge that is up; bounded attempts.
          for (
            let attempt = 0;
            attempt < 100 && !finished && user.xmpp.status !== "online";
            attempt++
          ) {
            await delay(50 + 50 * (attempt % 4));
            const urls = liveUrls();
            xmpp.options.service = urls[attempt % urls.length];
            await xmpp.reconnect.reconnect().catch(() => undefined);
            await until(() => user.xmpp.status === "online", "resumed", 3000).catch(
              () => undefined,
            );
          }
          resuming = false;
        })();
      });
    }
    const pairs: [TestUser, TestUser][] = [];
    for (let i = 0; i < logged.length; i += 2) pairs.push([logged[i], logged[i + 1]]);
    const load = running.add(new ChatLoad(pairs));
    load.start(200);
    const sentBy = (n: number) => until(() => load.sent >= n, `${n} messages sent`, 30000);

    for (const id of edgeIds) {
      await sentBy(load.sent + 100);
      live.delete(id);
      assert.equal(await (edges.get(id) as EdgeProcess).stop("SIGTERM"), 0, `${id} drains`);
      edges.set(id, await mesh.edge(id, ""));
      live.add(id);
    }
    for (let i = 0; i < sessionIds.length; i++) {
      await sentBy(load.sent + 100);
      assert.equal(await sessions[i].stop("SIGTERM"), 0, `${sessionIds[i]} hands over`);
      sessions = sessions.filter((_, j) => j !== i);
      sessions.splice(i, 0, await mesh.session(sessionIds[i], ""));
      await until(async () => (await servedTotal(sessions)) === SHARDS, "every shard served");
    }
    await until(
      () => logged.every((u) => u.xmpp.status === "online"),
      "every client online",
      20000,
    );
    await sentBy(load.sent + 100);
    const report = await load.report(20000);
    console.log(
      `      ${formatReport("rolling restart of 2 edges and 2 sessions", report)}; resumptions ${resumptions}`,
    );
    assert.equal(report.missing, 0);
    assert.equal(report.duplicates, 0);
    assert.equal(report.outOfOrder, 0);
    assert.ok(resumptions > 0, "the drained clients resumed their sessions");
  });
});
