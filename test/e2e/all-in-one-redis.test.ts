// The all-in-one on Redis as the only session member (`megaphone start --redis URL
// --membership static`), the single-server way to keep state: its session writes the frames
// for its own edge straight to the sockets (in-process-edge-bus.ts), three stops per reply
// instead of five. Real @xmpp/client users log in, chat with every message counted (delivered
// once, in order), leave messages offline and get them at the next login; the edge's Redis
// inbox carries none of it, and the shard inboxes none of the sockets' own packets (they reach
// the member in process, own-member-intake.ts). A frame written to that inbox from outside turns the shortcut off
// and nothing is lost. Killed with SIGKILL and started again on the same Redis, an XEP-0198
// client resumes and every message sent to it is delivered once, none stored offline.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { accountFor, assertAccounted } from "../helpers/accounting.js";
import { ChatLoad, formatReport } from "../helpers/chat-load.js";
import { metricValue, spawnService, waitForHttp, type ServiceProcess } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { RawClient } from "../helpers/raw-client.js";
import { monitorRedis } from "../helpers/redis-monitor.js";
import { connect, freePort, startRedis, type RedisServer } from "../helpers/redis-server.js";
import { Running } from "../helpers/running.js";
import { TestUser, isMessageFrom, loginAs, xml } from "../helpers/xmpp-client.js";

const USERS = ["alice", "bob", "carol", "dave"];
const HELD_DELIVERIES = 'megaphone_session_sm_local_deliveries_total{path="held"}';

describe("e2e: the all-in-one on Redis, the only member (its replies in process)", function () {
  this.timeout(60000);
  let redis: RedisServer;
  let admin: Redis;
  let port: number;
  let service: ServiceProcess | undefined;
  const users: TestUser[] = [];
  const clients: RawClient[] = [];
  const running = new Running();

  /** Starts the all-in-one on the test's Redis, at the same port each time. */
  async function start(): Promise<void> {
    service = spawnService(
      "all-in-one",
      [
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--redis",
        redis.url,
        ...USERS.flatMap((name) => ["--user", `${name}@localhost:${name}-pw`]),
      ],
      {
        MEGAPHONE_MEMBERSHIP: "static",
        MEGAPHONE_SHARD_COUNT: "4",
        // A killed process's leases, and its edge, are given up within these.
        MEGAPHONE_SHARD_LEASE_TTL_MS: "2000",
        // Unused by static membership, but held to the lease's bound by the settings' checks.
        MEGAPHONE_MEMBERSHIP_TTL_MS: "1000",
        MEGAPHONE_MEMBERSHIP_HEARTBEAT_INTERVAL_MS: "250",
        MEGAPHONE_EDGE_HEARTBEAT_INTERVAL_MS: "250",
        MEGAPHONE_EDGE_HEARTBEAT_TTL_MS: "1500",
        MEGAPHONE_PLAIN_REQUIRES_TLS: "false",
      },
    );
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, service, 30000);
  }

  const url = () => `ws://127.0.0.1:${port}/xmpp-websocket`;

  before(async () => {
    redis = await startRedis();
    admin = connect(redis.url);
    port = await freePort();
    await start();
  });

  afterEach(() => running.stopAll());

  after(async () => {
    for (const client of clients) client.close();
    for (const user of users) await user.stop();
    await service?.stop("SIGKILL");
    admin?.disconnect();
    await redis?.stop();
  });

  /**
   * Counts the frames Redis sees written to edge inboxes, and the packets written to shard
   * inboxes: all of them, and the sockets' own (open, data, close), until stopped.
   */
  async function countEdgeInboxWrites() {
    const counts = { edge: 0, shard: 0, socketPackets: 0 };
    // The edge's own marker, when it makes its inbox, is not a frame.
    const monitor = await monitorRedis(redis.url, ({ args }) => {
      if (args[0]?.toLowerCase() !== "xadd" || args.includes("inbox-created")) return;
      if (/^mp:edge:\{[^}]+\}$/.test(args[1])) return void counts.edge++;
      counts.shard++;
      if (["open", "data", "close"].includes(args[args.indexOf("k", 2) + 1]))
        counts.socketPackets++;
    });
    running.add(monitor);
    // A client can see a frame before this process has read the XADD that carried it.
    return { counts, stop: () => monitor.stopWhenCaughtUp(admin) };
  }

  it("logs in, chats with every message once and in order, and stores offline, none of it through the edge's Redis inbox", async () => {
    const writes = await countEdgeInboxWrites();
    const [alice, bob, carol, dave] = await Promise.all(
      USERS.map((name) => loginAs(users, url(), name)),
    );
    const load = running.add(
      new ChatLoad([
        [alice, bob],
        [carol, dave],
      ]),
    );
    load.start(20);
    await until(() => load.sent >= 200, "200 messages sent", 10000);
    const report = await load.report();
    console.log(formatReport("all-in-one on Redis", report));
    assert.equal(report.missing, 0);
    assert.equal(report.duplicates, 0);
    assert.equal(report.outOfOrder, 0);

    // Stored while dave is away, delivered at his initial presence.
    await dave.stop();
    users.splice(users.indexOf(dave), 1);
    for (let n = 1; n <= 3; n++)
      await carol.send(
        xml("message", { to: "dave@localhost", type: "chat" }, xml("body", {}, `later ${n}`)),
      );
    await until(
      async () => (await admin.llen("mp:{dave@localhost}:offline")) === 3,
      "three messages stored offline",
    );
    const back = await loginAs(users, url(), "dave");
    await back.send(xml("presence"));
    for (let n = 1; n <= 3; n++)
      await back.waitFor(isMessageFrom(carol.jid, `later ${n}`), `offline message ${n}`);
    await writes.stop();
    console.log(
      `      Redis saw ${writes.counts.shard} shard inbox writes (${writes.counts.socketPackets} of them the sockets' own packets) and ${writes.counts.edge} edge inbox writes`,
    );
    // The clients' frames reach the member in process. A message for an XEP-0198 client
    // (these clients enable it) is delivered by the sender's unit holding the recipient's turn,
    // or, when that turn is busy, routed through the recipient's shard inbox.
    // This load's pairs write to each other at the same instant, so most are routed; and a
    // message that reaches a client before its <enabled/> is written to it at once. The
    // paths themselves are the sm-held-delivery integration test's.
    const held = (await metricValue(port, HELD_DELIVERIES)) || 0;
    console.log(`      ${held} messages delivered with the recipient's turn held`);
    assert.equal(writes.counts.socketPackets, 0, "the sockets' packets went in process");
    assert.equal(writes.counts.edge, 0);
  });

  it("stops writing in process when a frame reaches the edge's inbox from elsewhere: nothing lost", async () => {
    const alice = await loginAs(users, url(), "alice");
    const bob = await loginAs(users, url(), "bob");
    const [address] = await admin.zrange("mp:edges", "0", "-1");
    const binding = JSON.parse(
      (await admin.hget("mp:{alice@localhost}:res", alice.jid.split("/")[1])) as string,
    ) as { connId: string };
    // Another writer: what a second member would do.
    await admin.xadd(
      `mp:edge:{${address}}`,
      "*",
      "k",
      "data",
      "c",
      binding.connId,
      "d",
      `<message xmlns="jabber:client" from="bob@localhost" to="${alice.jid}" type="chat"><body>from elsewhere</body></message>`,
    );
    await alice.waitFor(isMessageFrom("bob@localhost", "from elsewhere"), "the outside frame");
    const writes = await countEdgeInboxWrites();
    for (let n = 1; n <= 5; n++)
      await bob.send(
        xml("message", { to: alice.jid, type: "chat" }, xml("body", {}, `after ${n}`)),
      );
    for (let n = 1; n <= 5; n++)
      await alice.waitFor(isMessageFrom(bob.jid, `after ${n}`), `message ${n} after it`);
    await writes.stop();
    // Each taken once above: a second copy of any would still be in her inbox.
    await alice.expectNone(
      (el) => el.is("message") && /^(after \d|from elsewhere)$/.test(el.getChildText("body") ?? ""),
      () => alice.ping(),
    );
    console.log(
      `      after the outside frame: sent 6, delivered 6 once, duplicates 0; ${writes.counts.edge} edge inbox writes for the last 5`,
    );
    assert.ok(writes.counts.edge >= 5, "the session's frames go through the inbox now");
  });

  it("kill -9 and a restart on the same Redis: bob resumes (XEP-0198) and gets every message once", async () => {
    const SM = "urn:xmpp:sm:3";
    const bodyOf = (frame: string) => /<body>(m-\d+)<\/body>/.exec(frame)?.[1];
    const bodies = (frames: string[]) =>
      frames.map(bodyOf).filter((id): id is string => id !== undefined);
    const sent: string[] = [];
    const send = async (from: TestUser, count: number) => {
      for (let i = 0; i < count; i++) {
        const id = `m-${sent.length + 1}`;
        await from.send(
          xml("message", { to: "bob@localhost/phone", type: "chat", id }, xml("body", {}, id)),
        );
        sent.push(id);
      }
      await from.ping(); // all of them applied before going on
    };

    const first = await RawClient.connect(url());
    clients.push(first);
    await first.login("bob", "bob-pw", "phone");
    first.answerPings();
    first.send(`<enable xmlns="${SM}" resume="true"/>`);
    const enabled = await first.waitFrame((f) => f.startsWith("<enabled"), "<enabled/>");
    const previd = /id="([^"]+)"/.exec(enabled)?.[1] as string;
    const alice = await loginAs(users, url(), "alice");
    await send(alice, 10);
    await until(() => bodies(first.frames).length === 10, "m-1..m-10 on bob's first socket");

    await service?.stop("SIGKILL");
    await first.waitClosed();
    const before = bodies(first.frames);
    const h = before.length;
    await start();
    // Sent while bob's session waits to be resumed: kept for him, not stored offline.
    const again = await loginAs(users, url(), "alice");
    await send(again, 10);

    const second = await RawClient.connect(url());
    clients.push(second);
    await second.authenticate("bob", "bob-pw");
    second.send(`<resume xmlns="${SM}" previd="${previd}" h="${h}"/>`);
    await second.waitFrame((f) => f.startsWith("<resumed"), "<resumed/>");
    await until(
      () => before.length + bodies(second.frames).length >= sent.length,
      "every message after the resume",
    );
    second.send(`<r xmlns="${SM}"/>`);
    await second.waitFrame((f) => f.startsWith("<a "), "a round trip after the resume");
    const after = bodies(second.frames);
    const accounting = accountFor(sent, {
      "delivered before the kill": before,
      "after the resume": after,
    });
    console.log(`      ${accounting.summary}`);
    assertAccounted(accounting);
    assert.deepEqual(accounting.outcomes, sent, "in order");
    assert.equal(await admin.llen("mp:{bob@localhost}:offline"), 0, "nothing went offline");
  });
});
