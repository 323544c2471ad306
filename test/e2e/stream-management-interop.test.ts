// XEP-0198 resumption by the two outside client libraries the tests use, each with its own
// stream management code: @xmpp/client (@xmpp/stream-management) and StanzaJS 12. Each one's
// socket is dropped without a word while messages flow to it, and it reconnects through the
// other edge, which puts it on the other session process: it must resume (not bind anew), and
// get every message exactly once. Counts are printed.
import assert from "node:assert/strict";
import type { EventEmitter } from "node:events";
import { Mesh, type EdgeProcess } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { StanzaUser, once } from "../helpers/stanza-user.js";
import { TestUser, xml } from "../helpers/xmpp-client.js";

const MESSAGES = 20;
const SEND_INTERVAL_MS = 30;

/** The parts of @xmpp/client's stream management plugin the test looks at. */
interface XmppJsStreamManagement extends EventEmitter {
  enabled: boolean;
  id: string;
}

describe("interop: XEP-0198 resumption through another edge", function () {
  this.timeout(60000);
  let mesh: Mesh;
  let edgeA: EdgeProcess;
  let edgeB: EdgeProcess;
  let serial = 0;

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({ shardCount: 4 });
    await mesh.session("s01", "0-1");
    await mesh.session("s23", "2-3");
    edgeA = await mesh.edge("ea", "0-1");
    edgeB = await mesh.edge("eb", "2-3");
  });

  after(async () => {
    await mesh?.stop();
  });

  async function sender(): Promise<TestUser> {
    const name = `alice${++serial}`;
    await mesh.addUser(`${name}@localhost`, "pw");
    return TestUser.connect({ service: edgeB.url, username: name, password: "pw" });
  }

  /** alice sends `count` messages to `to`, one every SEND_INTERVAL_MS; their ids go in `sent`. */
  async function sendMessages(alice: TestUser, to: string, count: number, sent: string[]) {
    for (let i = 0; i < count; i++) {
      const id = `m-${sent.length + 1}`;
      sent.push(id);
      await alice.send(xml("message", { to, type: "chat", id }, xml("body", {}, id)));
      await new Promise((resolve) => setTimeout(resolve, SEND_INTERVAL_MS));
    }
  }

  function account(label: string, sent: string[], received: string[]) {
    const unaccounted = sent.filter((id) => !received.includes(id));
    const duplicates = received.length - new Set(received).size;
    console.log(
      `      ${label}: sent ${sent.length}, received ${received.length}; unaccounted ${unaccounted.length}, duplicates ${duplicates}`,
    );
    assert.deepEqual(unaccounted, []);
    assert.equal(duplicates, 0, received.join(" "));
  }

  it("@xmpp/client resumes through the other edge and gets every message once", async () => {
    const alice = await sender();
    const name = `xbob${serial}`;
    await mesh.addUser(`${name}@localhost`, "pw");
    const bob = await TestUser.connect({ service: edgeA.url, username: name, password: "pw" });
    try {
      const sm = (bob.xmpp as unknown as { streamManagement: XmppJsStreamManagement })
        .streamManagement;
      await until(() => sm.enabled, "stream management enabled");
      const id = sm.id;
      assert.match(id, /^[01]\./, "the session lives on a shard of edge A's session");
      const received = () =>
        bob.inbox.filter((el) => el.is("message")).map((el) => el.getChildText("body") ?? "");
      const sent: string[] = [];
      const sending = sendMessages(alice, bob.jid, MESSAGES, sent);
      await until(() => received().includes("m-5"), "m-5 before the drop");
      const resumed = new Promise<void>((resolve) => sm.once("resumed", () => resolve()));
      // Its next connection goes through the other edge.
      (bob.xmpp as unknown as { options: { service: string } }).options.service = edgeB.url;
      (bob.xmpp.reconnect as unknown as { start(): void }).start();
      bob.kill();
      await resumed;
      assert.equal(sm.id, id, "the same session, resumed");
      await sending;
      await until(() => received().length >= sent.length, "every message", 10000);
      await alice.ping();
      await bob.ping();
      account("@xmpp/client", sent, received());
    } finally {
      bob.xmpp.reconnect.stop();
      await bob.stop();
      await alice.stop();
    }
  });

  it("StanzaJS resumes through the other edge and gets every message once", async () => {
    const alice = await sender();
    const name = `sbob${serial}`;
    await mesh.addUser(`${name}@localhost`, "pw");
    const bob = await StanzaUser.connect({
      url: edgeA.url,
      jid: `${name}@localhost`,
      password: "pw",
    });
    try {
      const { client } = bob;
      await until(() => client.sm.started && client.sm.resumable, "resumable stream management");
      const id = client.sm.id;
      const received = () =>
        bob.inbox.flatMap((r) => (r.kind === "message" ? [r.stanza.body ?? ""] : []));
      const sent: string[] = [];
      const sending = sendMessages(alice, bob.jid, MESSAGES, sent);
      await until(() => received().includes("m-5"), "m-5 before the drop");
      const disconnected = once(client, "disconnected");
      client.config.autoReconnect = false;
      const socket = (client.transport as unknown as { socket: { terminate(): void } }).socket;
      socket.terminate();
      await disconnected;
      // Its next connection goes through the other edge, resuming what StanzaJS hibernated.
      client.config.transports = { websocket: edgeB.url, bosh: false };
      const resumed = once(client, "stream:management:resumed", 10000);
      void client.connect();
      await resumed;
      assert.equal(client.sm.id, id, "the same session, resumed");
      await sending;
      await until(() => received().length >= sent.length, "every message", 10000);
      await alice.ping();
      await client.ping();
      const binds = bob.frames.filter((f) => f.direction === "out" && f.data.includes("xmpp-bind"));
      assert.equal(binds.length, 1, "bound once, on the first connection only");
      account("StanzaJS", sent, received());
    } finally {
      await bob.stop();
      await alice.stop();
    }
  });
});
