// An edge that dies without a word (kill -9), and one restarted at once under the same id
// (DESIGN.md failure model): within the heartbeat bound its contacts see the user unavailable,
// and every message alice sent is delivered live, stored offline or bounced to her, once.
// A second edge can never take a running edge's id.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { accountFor, assertAccounted } from "../helpers/accounting.js";
import { Mesh, spawnService, type EdgeProcess } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { RawClient } from "../helpers/raw-client.js";
import { connect, freePort } from "../helpers/redis-server.js";
import { TestUser, isPresenceFrom, xml } from "../helpers/xmpp-client.js";

const KEYS = redisKeys();
const HEARTBEAT_INTERVAL_MS = 250;
const HEARTBEAT_TTL_MS = 1500;
/** Alice's sending rate while bob's edge dies: 5 messages a second. */
const SEND_INTERVAL_MS = 200;

const bodyOf = (frame: string) => /<body>(m-\d+)<\/body>/.exec(frame)?.[1];

describe("e2e: an edge dies", function () {
  this.timeout(60000);
  let mesh: Mesh;
  let edge1: EdgeProcess;
  let admin: Redis;
  let serial = 0;

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({
      shardCount: 4,
      env: {
        MEGAPHONE_EDGE_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS),
        MEGAPHONE_EDGE_HEARTBEAT_TTL_MS: String(HEARTBEAT_TTL_MS),
        // The SIGTERM case closes bob soon (edge-drain.test.ts has the gradual drain).
        MEGAPHONE_DRAIN_DELAY_MS: "200",
        MEGAPHONE_DRAIN_WINDOW_MS: "500",
      },
    });
    await mesh.session("s1", "");
    edge1 = await mesh.edge("e1", "");
    admin = connect(mesh.redis.url);
  });

  after(async () => {
    admin?.disconnect();
    await mesh?.stop();
  });

  /** The address of the running incarnation of edge `edgeId`. */
  async function addressOf(edgeId: string): Promise<string> {
    let address: string | undefined;
    await until(async () => {
      address = (await admin.zrange(KEYS.edges(), "0", "-1")).find((a) =>
        a.startsWith(`${edgeId}:`),
      );
      return address !== undefined;
    }, `edge ${edgeId} registered`);
    return address as string;
  }

  /** How bob's edge goes: kill -9, kill -9 and a restart under its id, or a drain (SIGTERM). */
  type EdgeEnd = "kill" | "kill-and-restart" | "term";

  async function endBobsEdge(how: EdgeEnd): Promise<void> {
    const tag = ++serial;
    const bobName = `bob${tag}`;
    const aliceName = `alice${tag}`;
    await mesh.addUser(`${aliceName}@localhost`, "pw");
    await mesh.addUser(`${bobName}@localhost`, "pw");
    const bobBare = `${bobName}@localhost`;
    const edgeId = `e2-${tag}`;
    const edge2 = await mesh.edge(edgeId, "");
    const alice = await TestUser.connect({
      service: edge1.url,
      username: aliceName,
      password: "pw",
    });
    const bob = await RawClient.connect(edge2.url);
    let bobAgain: TestUser | undefined;
    try {
      await bob.login(bobName, "pw", "phone");
      bob.answerPings();
      bob.send("<presence xmlns='jabber:client'/>");
      // alice subscribes to bob, so that bob's going away is broadcast to her.
      await alice.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
      await alice.send(xml("presence", { to: bobBare, type: "subscribe" }));
      await bob.waitFrame((f) => f.includes('type="subscribe"'), "alice's request");
      bob.send(`<presence xmlns="jabber:client" to="${aliceName}@localhost" type="subscribed"/>`);
      await alice.send(xml("presence"));
      await alice.waitFor(isPresenceFrom(bobBare, undefined), "bob available");

      const sent: string[] = [];
      const send = (): Promise<void> => {
        const id = `m-${sent.length + 1}`;
        sent.push(id);
        return alice.send(xml("message", { to: bobBare, type: "chat", id }, xml("body", {}, id)));
      };
      // Live: each message reaches bob before the next is sent.
      for (let i = 0; i < 5; i++) {
        await send();
        const id = sent[sent.length - 1];
        await bob.waitFrame((f) => bodyOf(f) === id, `live message ${id}`);
      }
      // The edge has reported how far it delivered: it dies with nothing in hand.
      const address = await addressOf(edgeId);
      await until(async () => {
        const [[lastId] = []] = await admin.xrevrange(
          KEYS.edgeInbox(address),
          "+",
          "-",
          "COUNT",
          1,
        );
        return (await admin.get(KEYS.edgeReadCursor(address))) === lastId;
      }, "the edge's reported position");

      const killedAt = Date.now();
      // A drain runs while alice goes on writing: what bob's edge could no longer deliver
      // must come back, not vanish with its inbox.
      const stopped = edge2.stop(how === "term" ? "SIGTERM" : "SIGKILL");
      if (how !== "term") await stopped;
      let restarted: EdgeProcess | undefined;
      if (how === "kill-and-restart") restarted = await mesh.edge(edgeId, "");
      // alice goes on at 5 messages a second until she sees bob go, then 5 more.
      const isBobGone = isPresenceFrom(bobBare, "unavailable");
      let goneAt: number | undefined;
      let after = 0;
      while (after < 5) {
        await send();
        if (goneAt === undefined && alice.inbox.some(isBobGone)) goneAt = Date.now();
        if (goneAt !== undefined) after++;
        assert.ok(Date.now() - killedAt < 20000, "bob never went unavailable");
        await new Promise((resolve) => setTimeout(resolve, SEND_INTERVAL_MS));
      }
      if (how === "term") assert.equal(await stopped, 0, "the drained edge exits 0");
      const detectionMs = (goneAt as number) - killedAt;
      assert.ok(
        detectionMs <= HEARTBEAT_TTL_MS + 4 * HEARTBEAT_INTERVAL_MS + 2000,
        `alice saw bob unavailable ${detectionMs} ms after the kill`,
      );

      // Bob logs in again: what was stored comes with his initial presence, before the ping.
      bobAgain = await TestUser.connect({
        service: (restarted ?? edge1).url,
        username: bobName,
        password: "pw",
      });
      await bobAgain.send(xml("presence"));
      await bobAgain.ping();
      await alice.ping();

      const live = bob.frames.map(bodyOf).filter((id): id is string => id !== undefined);
      const offline = bobAgain.inbox
        .filter((el) => el.is("message"))
        .map((el) => el.getChildText("body") ?? "");
      const bounced = alice.inbox
        .filter((el) => el.is("message") && el.attrs.type === "error")
        .map((el) => el.attrs.id);
      const accounting = accountFor(sent, {
        "delivered live": live,
        "stored offline": offline,
        bounced,
      });
      console.log(
        `      ${how}: ${accounting.summary}; bob unavailable to alice after ${detectionMs} ms`,
      );
      assertAccounted(accounting);
      assert.ok(offline.length >= 5, "the messages sent after bob went are stored");
    } finally {
      await alice.stop();
      await bobAgain?.stop();
      bob.terminate();
    }
  }

  it("kill -9: contacts see the user go within the bound, and no message is lost", async () => {
    await endBobsEdge("kill");
  });

  it("kill -9 and an immediate restart under the same id: the new edge inherits nothing, nothing is lost", async () => {
    await endBobsEdge("kill-and-restart");
  });

  it("SIGTERM while messages flow: the edge drains, and every message is delivered, stored or bounced", async () => {
    await endBobsEdge("term");
  });

  it("refuses to start a second edge under the id of a running one, naming the holder", async () => {
    const port = await freePort();
    const twin = spawnService(
      "edge e1 twin",
      ["edge", "--id", "e1", "--port", String(port), "--host", "127.0.0.1"],
      mesh.env(),
    );
    const code = await new Promise<number | null>((resolve) =>
      twin.process.once("exit", (c) => resolve(c)),
    );
    assert.equal(code, 2, twin.output());
    assert.match(twin.output(), /edge id "e1" is held by the running edge e1:[0-9a-f]+/);
    assert.equal((await fetch(`http://127.0.0.1:${edge1.port}/readyz`)).status, 200);
  });
});
