// A real mesh (Redis, two edges, two sessions as processes; or, with `nodes`, Redis and two
// `megaphone node` processes, as the chart's mode nodes runs) scraped by a real Prometheus every
// second, each process a target labelled the way the chart's ServiceMonitor/PodMonitor labels
// pods (namespace, pod, release, tier), and a small load that makes every panel of the
// dashboard move: logins (SCRAM and PLAIN, one refused), presence, iq and 1:1 chat across the
// edges, a message stored offline, an XEP-0198 resumption (and a failed one, and a session left
// hibernated), and a stream error.
import assert from "node:assert/strict";
import { Mesh, metricValue, type EdgeProcess, type SessionProcess } from "./cluster.js";
import { until } from "./poll.js";
import { ChatLoad, formatReport, type ChatLoadReport } from "./chat-load.js";
import { Prometheus, type ScrapeTarget } from "./prometheus.js";
import { RawClient, isStreamError } from "./raw-client.js";
import { TestUser, loginAs, xml } from "./xmpp-client.js";

export const NAMESPACE = "chat";
export const RELEASE = "megaphone";
const SM = "urn:xmpp:sm:3";

export class ObservedMesh {
  private constructor(
    readonly mesh: Mesh,
    readonly edges: EdgeProcess[],
    readonly sessions: SessionProcess[],
    readonly prometheus: Prometheus,
    private readonly targets: ScrapeTarget[],
  ) {}

  /** The `pod` labels of one tier's targets. */
  pods(tier: "edge" | "session" | "node"): string[] {
    return this.targets.filter((t) => t.labels.tier === tier).map((t) => t.labels.pod);
  }

  /**
   * Starts everything and waits until Prometheus scrapes every process successfully. With
   * `nodes`, two nodes stand for both the edges (clients connect to them) and the sessions.
   */
  static async start({ nodes = false } = {}): Promise<ObservedMesh> {
    const mesh = await Mesh.start({ shardCount: 4, redis: "server" });
    let prometheus: Prometheus | undefined;
    try {
      const label = (tier: string, pod: string) => ({
        namespace: NAMESPACE,
        release: RELEASE,
        tier,
        pod,
      });
      if (nodes) {
        const pods = [`${RELEASE}-node-0`, `${RELEASE}-node-1`];
        const started = [await mesh.node(pods[0]), await mesh.node(pods[1])];
        // A node is ready before it takes its shards from the other: wait for the split, so
        // that each node's clients get its own member's shards (local-first) and each node
        // hands frames over in process, which the node-only panels show.
        const served = (n: EdgeProcess) => metricValue(n.port, "megaphone_session_shards_served");
        await until(
          async () => (await served(started[0])) > 0 && (await served(started[1])) > 0,
          "both nodes serve shards",
          20000,
        );
        const targets = started.map((n, i) => ({
          address: `127.0.0.1:${n.port}`,
          labels: label("node", pods[i]),
        }));
        prometheus = await Prometheus.start(targets);
        await prometheus.waitTargetsUp(targets.length);
        return new ObservedMesh(mesh, started, [], prometheus, targets);
      }
      // Pod names as the chart's Deployments would give them; a session's id is its pod name.
      const sessions = [
        await mesh.session(`${RELEASE}-session-0`, ""),
        await mesh.session(`${RELEASE}-session-1`, ""),
      ];
      const edges = [await mesh.edge("edge-0", ""), await mesh.edge("edge-1", "")];
      const targets: ScrapeTarget[] = [
        ...edges.map((e, i) => ({
          address: `127.0.0.1:${e.port}`,
          labels: label("edge", `${RELEASE}-edge-${i}`),
        })),
        ...sessions.map((s, i) => ({
          address: `127.0.0.1:${s.httpPort}`,
          labels: label("session", `${RELEASE}-session-${i}`),
        })),
      ];
      prometheus = await Prometheus.start(targets);
      await prometheus.waitTargetsUp(targets.length);
      return new ObservedMesh(mesh, edges, sessions, prometheus, targets);
    } catch (err) {
      await prometheus?.stop();
      await mesh.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.prometheus.stop();
    await this.mesh.stop();
  }

  /**
   * One round of load, its user names prefixed by `tag` so rounds do not meet: `pairs` pairs
   * chatting across the two edges for `chatMs` (a message each way every `intervalMs`), and
   * meanwhile every other event the dashboard shows once. Resolves when all of it is done
   * and every chat message was delivered (or throws).
   */
  async exercise(
    tag: string,
    { pairs = 2, chatMs = 4000, intervalMs = 100 } = {},
  ): Promise<ChatLoadReport> {
    const [edgeA, edgeB] = this.edges;
    const name = (role: string, i = 0) => `${tag}-${role}${i}`;
    const names = [
      ...Array.from({ length: pairs }, (_, i) => [name("a", i), name("b", i)]).flat(),
      name("offline"),
      name("resumer"),
      name("sleeper"),
    ];
    await this.mesh.addUsers(names.map((n) => ({ jid: `${n}@localhost`, password: `${n}-pw` })));
    const users: TestUser[] = [];
    const raws: RawClient[] = [];
    let chat: ChatLoad | undefined;
    try {
      const chatters: [TestUser, TestUser][] = [];
      for (let i = 0; i < pairs; i++) {
        // Across the edges, one side with each SASL mechanism the server offers.
        const a = await loginAs(users, edgeA.url, name("a", i));
        const b = await loginAs(users, edgeB.url, name("b", i), { mechanism: "PLAIN" });
        chatters.push([a, b]);
      }
      await Promise.all(users.map((u) => u.send(xml("presence"))));
      await Promise.all(users.map((u) => u.ping()));
      chat = new ChatLoad(chatters);
      chat.start(intervalMs);
      const chatting = new Promise((resolve) => setTimeout(resolve, chatMs));

      await this.refusedLogin(edgeA.url, name("a", 0), raws);
      await users[0].send(
        xml("message", { to: `${name("offline")}@localhost`, type: "chat" }, xml("body", {}, "hi")),
      );
      await users[0].ping(); // the offline store write is done before the ping's answer
      await this.resumption(edgeA.url, edgeB.url, name("resumer"), raws);
      await this.hibernate(edgeB.url, name("sleeper"), raws);
      await this.streamError(edgeA.url, raws);

      await chatting;
      const report = await chat.report();
      assert.equal(report.missing + report.duplicates, 0, formatReport("chat", report));
      return report;
    } finally {
      chat?.stop(); // its timer, when a step above failed
      for (const raw of raws) raw.terminate();
      await Promise.all(users.map((u) => u.stop()));
    }
  }

  /**
   * A login with a wrong password: SASL not-authorized. On a raw client, closed afterwards
   * (@xmpp/client keeps its socket open when start() fails, and nothing would stop it).
   */
  private async refusedLogin(service: string, username: string, raws: RawClient[]) {
    const client = await RawClient.connect(service);
    raws.push(client);
    client.open();
    await client.waitFrame((f) => f.includes("mechanisms"), "SASL features");
    const auth = Buffer.from(`\0${username}\0wrong`).toString("base64");
    client.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${auth}</auth>`);
    await client.waitFrame(
      (f) => f.startsWith("<failure") && f.includes("not-authorized"),
      "SASL failure",
    );
    client.terminate();
  }

  /** PLAIN login and stream restart on a raw client, stopping where bind or resume goes. */
  private async authenticate(service: string, username: string, raws: RawClient[]) {
    const client = await RawClient.connect(service);
    raws.push(client);
    client.open();
    await client.waitFrame((f) => f.includes("mechanisms"), "SASL features");
    const auth = Buffer.from(`\0${username}\0${username}-pw`).toString("base64");
    client.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${auth}</auth>`);
    await client.waitFrame((f) => f.startsWith("<success"), "SASL success");
    client.open();
    await client.waitFrame((f) => f.includes(`<sm xmlns="${SM}"/>`), "the sm feature");
    return client;
  }

  /** Binds, enables resumable stream management; returns the stream id. */
  private async enable(client: RawClient): Promise<string> {
    client.send(
      `<iq xmlns="jabber:client" type="set" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>`,
    );
    await client.waitFrame((f) => f.includes('id="b1"'), "bind result");
    client.send(`<enable xmlns="${SM}" resume="true"/>`);
    const enabled = await client.waitFrame((f) => f.startsWith("<enabled"), "<enabled/>");
    const id = /id="([^"]+)"/.exec(enabled)?.[1];
    assert.ok(id, `no stream id in ${enabled}`);
    return id;
  }

  /** XEP-0198: a dropped socket resumed through the other edge, then a resume that fails. */
  private async resumption(
    first: string,
    second: string,
    username: string,
    raws: RawClient[],
  ): Promise<void> {
    const dropped = await this.authenticate(first, username, raws);
    const id = await this.enable(dropped);
    dropped.terminate();
    const resumed = await this.authenticate(second, username, raws);
    resumed.send(`<resume xmlns="${SM}" previd="${id}" h="0"/>`);
    await resumed.waitFrame((f) => f.startsWith("<resumed"), "<resumed/>");
    const failed = await this.authenticate(second, username, raws);
    failed.send(`<resume xmlns="${SM}" previd="no-such-session" h="0"/>`);
    await failed.waitFrame((f) => f.startsWith("<failed"), "<failed/>");
  }

  /** A resumable session whose socket drops: it stays hibernated awaiting its client. */
  private async hibernate(service: string, username: string, raws: RawClient[]): Promise<void> {
    const client = await this.authenticate(service, username, raws);
    await this.enable(client);
    client.terminate();
  }

  /** Malformed XML: the session answers with the not-well-formed stream error and closes. */
  private async streamError(service: string, raws: RawClient[]): Promise<void> {
    const client = await RawClient.connect(service);
    raws.push(client);
    client.open();
    await client.waitFrame((f) => f.includes("mechanisms"), "SASL features");
    client.send("<message><<<");
    await client.waitFrame(isStreamError("not-well-formed"), "the not-well-formed stream error");
    await client.waitClosed();
  }
}
