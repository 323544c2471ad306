// A client that stops reading is closed as a slow consumer (DESIGN.md failure model), and
// nothing sent to it vanishes: what its socket had accepted reaches it when it reads again,
// followed by the stream error and the close; every stanza the edge did not hand to the socket
// goes back to the session, which stores it offline or bounces it to its sender.
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import type { Redis } from "ioredis";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { accountFor, assertAccounted } from "../helpers/accounting.js";
import { Mesh, type EdgeProcess } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { RawClient, isStreamError } from "../helpers/raw-client.js";
import { connect } from "../helpers/redis-server.js";
import { TestUser, xml } from "../helpers/xmpp-client.js";

const KEYS = redisKeys();
const MESSAGES = 640;
/** 640 × 16 KiB: 10 MiB for a client that does not read. */
const PADDING = "x".repeat(16 * 1024);
const idOf = (text: string) => /(m-\d+) /.exec(text)?.[1];

describe("e2e: a client that stops reading", function () {
  this.timeout(90000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  let admin: Redis;

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({
      shardCount: 4,
      env: {
        // alice may send 10 MiB at once; bob's queue may hold it (what does not fit bounces).
        MEGAPHONE_INBOUND_BYTES_PER_SECOND: String(64 * 1024 * 1024),
        MEGAPHONE_INBOUND_BURST_BYTES: String(64 * 1024 * 1024),
        MEGAPHONE_OFFLINE_MAX_BYTES: String(8 * 1024 * 1024),
        MEGAPHONE_OFFLINE_MAX_MESSAGES: "1000",
        MEGAPHONE_OFFLINE_MAX_MESSAGES_PER_SENDER: "1000",
      },
    });
    await mesh.session("s1", "");
    edge = await mesh.edge("e1", "");
    await mesh.addUser("alice@localhost", "alice-pw");
    await mesh.addUser("bob@localhost", "bob-pw");
    admin = connect(mesh.redis.url);
  });

  after(async () => {
    admin?.disconnect();
    await mesh?.stop();
  });

  async function slowConsumerCloses(): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${edge.port}/metrics`)).text();
    return Number(
      /megaphone_edge_closes_total\{reason="slow-consumer"\} (\d+)/.exec(text)?.[1] ?? 0,
    );
  }

  it("is closed gracefully, and every message sent to it is received, stored offline or bounced", async () => {
    const alice = await TestUser.connect({
      service: edge.url,
      username: "alice",
      password: "alice-pw",
    });
    const bob = await RawClient.connect(edge.url);
    let bobAgain: TestUser | undefined;
    try {
      await bob.login("bob", "bob-pw", "phone");
      bob.send("<presence xmlns='jabber:client'/>");
      bob.send(`<iq xmlns="jabber:client" type="get" id="p1"><ping xmlns="urn:xmpp:ping"/></iq>`);
      await bob.waitFrame((f) => f.includes('id="p1"'), "bob's ping answer");
      const socket = (bob.ws as unknown as { _socket: Socket })._socket;
      socket.pause();

      const sent: string[] = [];
      for (let i = 1; i <= MESSAGES; i++) {
        const id = `m-${i}`;
        sent.push(id);
        await alice.send(
          xml(
            "message",
            { to: "bob@localhost", type: "chat", id },
            xml("body", {}, `${id} ${PADDING}`),
          ),
        );
      }
      await until(
        async () => (await slowConsumerCloses()) >= 1,
        "the slow-consumer close",
        30000,
        50,
      );
      socket.resume();
      const closed = await bob.waitClosed(30000);
      await alice.ping();

      const received = bob.frames.map(idOf).filter((id): id is string => id !== undefined);
      const bounced = () =>
        alice.inbox
          .filter((el) => el.is("message") && el.attrs.type === "error")
          .map((el) => el.attrs.id as string);
      // What the edge gave back travels through the session to offline storage (or a bounce).
      await until(
        async () =>
          received.length + (await admin.llen(KEYS.offline("bob@localhost"))) + bounced().length >=
          sent.length,
        "every message accounted for",
        30000,
        50,
      );
      bobAgain = await TestUser.connect({ service: edge.url, username: "bob", password: "bob-pw" });
      await bobAgain.send(xml("presence"));
      await bobAgain.ping();
      const offline = bobAgain.inbox
        .filter((el) => el.is("message") && el.attrs.type !== "error")
        .map((el) => idOf(el.getChildText("body") ?? ""));
      const accounting = accountFor(sent, {
        received,
        "stored offline": offline,
        bounced: bounced(),
      });
      console.log(`      ${accounting.summary}; close code ${closed.code}`);
      assert.ok(bob.frames.some(isStreamError("resource-constraint")), "the stream error arrived");
      assert.equal(closed.code, 1013, "a close frame, not a dropped socket");
      assertAccounted(accounting);
    } finally {
      await alice.stop();
      await bobAgain?.stop();
      bob.terminate();
    }
  });
});
