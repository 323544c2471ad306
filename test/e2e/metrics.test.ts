// The metrics of a real mesh (Redis, one edge with its own metrics port, one session process)
// while real @xmpp/client users log in, a raw client fails to, users chat and leave a message offline: the
// contract's series move on the tier that owns them, both tiers serve the process's default
// metrics, and README's "Metrics reference" table lists exactly the megaphone_* metrics the two
// processes expose, with their types and tiers.
import assert from "node:assert/strict";
import { sampleProcess } from "../../services/bench/proc-stats.js";
import { MEGAPHONE_VERSION } from "../../services/shared/version.js";
import { Mesh, metricValue, type EdgeProcess, type SessionProcess } from "../helpers/cluster.js";
import { freePort } from "../helpers/redis-server.js";
import { RawClient } from "../helpers/raw-client.js";
import { TestUser, isMessageFrom, loginAs, xml } from "../helpers/xmpp-client.js";
import { readmeMetrics } from "../helpers/readme-metrics.js";

const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";

/** name → type of every metric a /metrics text declares (its `# TYPE` lines). */
function declaredTypes(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (match) types.set(match[1], match[2]);
  }
  return types;
}

describe("e2e: metrics of a mesh (prom-client)", function () {
  this.timeout(30000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  let edgeMetricsPort: number;
  let session: SessionProcess;
  const users: TestUser[] = [];

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({ shardCount: 2 });
    session = await mesh.session("s1", "");
    edgeMetricsPort = await freePort();
    edge = await mesh.edge("e1", "", { MEGAPHONE_METRICS_PORT: String(edgeMetricsPort) });
    for (const name of ["alice", "bob", "carol"])
      await mesh.addUser(`${name}@localhost`, `${name}-pw`);
  });

  after(async () => {
    await Promise.all(users.map((u) => u.stop()));
    await mesh?.stop();
  });

  const edgeMetric = (name: string) => metricValue(edgeMetricsPort, name);
  const sessionMetric = (name: string) => metricValue(session.httpPort, name);

  it("keeps idle processes asleep: the event-loop-delay monitor does not wake them 100 times a second", async () => {
    // Main-thread wake-ups of the idle edge and session over 1 s windows; the lowest of three,
    // so that a window with startup work in it does not count. prom-client's default 10 ms
    // monitor alone gave 100 a second (114 measured); at EVENT_LOOP_MONITOR_MS, 15–35.
    for (const [tier, pid] of [
      ["edge", edge.process.pid as number],
      ["session", session.process.pid as number],
    ] as const) {
      const windows: number[] = [];
      for (let i = 0; i < 3; i++) {
        const before = sampleProcess(pid)?.wakeups ?? NaN;
        await new Promise((resolve) => setTimeout(resolve, 1000));
        windows.push((sampleProcess(pid)?.wakeups ?? NaN) - before);
      }
      console.log(`      ${tier} wake-ups per idle second: ${windows.join(", ")}`);
      assert.ok(Math.min(...windows) < 60, `${tier}: ${windows.join(", ")} wake-ups a second`);
    }
  });

  it("counts logins, stanzas, handler and delivery times, offline storage and Redis round trips", async () => {
    const alice = await loginAs(users, edge.url, "alice", { mechanism: "SCRAM-SHA-256" });
    const bob = await loginAs(users, edge.url, "bob", { mechanism: "PLAIN" });
    // Two failed SASL attempts on one raw stream: a wrong password, a mechanism nobody has.
    const raw = await RawClient.connect(edge.url);
    raw.open();
    await raw.waitFrame((f) => f.includes("<stream:features"), "features");
    const wrong = Buffer.from("\0alice\0wrong").toString("base64");
    raw.send(`<auth xmlns="${NS_SASL}" mechanism="PLAIN">${wrong}</auth>`);
    await raw.waitFrame((f) => f.includes("<not-authorized/>"), "not-authorized");
    raw.send(`<auth xmlns="${NS_SASL}" mechanism="X-MADE-UP">=</auth>`);
    await raw.waitFrame((f) => f.includes("<invalid-mechanism/>"), "invalid-mechanism");
    raw.ws.close();
    await raw.waitClosed();
    await bob.send(xml("presence")); // available: a message to the bare JID reaches it
    await bob.ping();
    await alice.send(xml("message", { to: bob.bare, type: "chat" }, xml("body", {}, "hi bob")));
    await bob.waitFor(isMessageFrom(alice.bare, "hi bob"), "alice's message");
    // carol never logs in: her message is stored offline.
    await alice.send(
      xml("message", { to: "carol@localhost", type: "chat" }, xml("body", {}, "hi")),
    );
    await alice.ping(); // a round trip: the message before it has been applied

    const logins = (mechanism: string, result: string) =>
      sessionMetric(`megaphone_session_logins_total{mechanism="${mechanism}",result="${result}"}`);
    assert.equal(await logins("SCRAM-SHA-256", "success"), 1);
    assert.equal(await logins("PLAIN", "success"), 1);
    assert.equal(await logins("PLAIN", "not-authorized"), 1);
    // A mechanism a client makes up is no label value of its own.
    assert.equal(await logins("other", "invalid-mechanism"), 1);
    assert.equal(await sessionMetric('megaphone_session_stanzas_total{kind="message"}'), 2);
    assert.equal(await sessionMetric('megaphone_session_stanzas_total{kind="presence"}'), 1);
    assert.ok((await sessionMetric('megaphone_session_stanzas_total{kind="iq"}')) >= 2);
    assert.ok((await sessionMetric("megaphone_session_handler_duration_seconds_count")) > 0);
    assert.ok((await sessionMetric("megaphone_session_entry_delay_seconds_count")) > 0);
    assert.ok((await sessionMetric("megaphone_session_batch_entries_count")) > 0);
    assert.equal(await sessionMetric("megaphone_session_offline_stored_total"), 1);
    assert.equal(
      await sessionMetric('megaphone_session_offline_queue_messages_bucket{le="1"}'),
      1,
      "carol's queue held one message",
    );
    assert.equal(
      await sessionMetric('megaphone_session_stream_errors_total{condition="not-authorized"}'),
      NaN,
      "a failed SASL attempt is no stream error",
    );

    assert.equal(await edgeMetric("megaphone_edge_connections"), 2);
    assert.equal(await edgeMetric("megaphone_edge_connections_opened_total"), 3);
    assert.ok((await edgeMetric("megaphone_edge_delivery_delay_seconds_count")) > 0);
    assert.ok((await edgeMetric("megaphone_edge_inbox_batch_entries_count")) > 0);
    assert.equal(await edgeMetric("megaphone_edge_draining"), 0);

    for (const metric of [edgeMetric, sessionMetric]) {
      const xadds = 'megaphone_redis_command_duration_seconds_count{command="xadd"}';
      assert.ok((await metric(xadds)) > 0, xadds);
      assert.equal(await metric(`megaphone_build_info{version="${MEGAPHONE_VERSION}"}`), 1);
      assert.ok((await metric("process_resident_memory_bytes")) > 0);
      assert.ok((await metric("nodejs_eventloop_lag_seconds")) >= 0);
      assert.ok((await metric("nodejs_heap_size_used_bytes")) > 0);
    }
  });

  it("README's Metrics reference lists exactly the megaphone_* metrics each tier exposes", async () => {
    const scrape = async (port: number) =>
      declaredTypes(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    const exposed = new Map<string, { type: string; tier: string }>();
    for (const [tier, types] of [
      ["edge", await scrape(edgeMetricsPort)],
      ["session", await scrape(session.httpPort)],
    ] as const) {
      for (const [name, type] of types) {
        if (!name.startsWith("megaphone_")) continue;
        const seen = exposed.get(name);
        exposed.set(name, { type, tier: seen ? "both" : tier });
      }
    }
    // A node's own rows are checked against a node (nodes.test.ts).
    const listed = new Map([...(await readmeMetrics())].filter(([, row]) => row.tier !== "node"));
    const missing = [...exposed.keys()].filter((name) => !listed.has(name));
    const extra = [...listed.keys()].filter((name) => !exposed.has(name));
    assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, "README table vs /metrics");
    for (const [name, row] of listed) assert.deepEqual(row, exposed.get(name), name);
  });
});
