// What routing a message costs in Redis reads when the target has many resources with large
// presences (issue 6, item 5): the route lookup reads routing data only (RouteStore.list), the
// presence payloads stay in their own hash and are read only for probes and current presence.
// Measured against a real redis-server with INFO's total_net_output_bytes.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { parse } from "ltx";
import { DEFAULTS } from "../../services/shared/config.js";
import { parseJid } from "../../services/shared/jid.js";
import { redisKeys } from "../../services/shared/redis/keys.js";
import { RedisRouteStore } from "../../services/shared/stores/route/redis-route-store.js";
import { routeMessage } from "../../services/session/features/message/message.js";
import { TestSessionContext } from "../helpers/session-context.js";
import { connect, startRedis, uniquePrefix, type RedisServer } from "../helpers/redis-server.js";

const BOB = "bob@example.com";
const RESOURCES = DEFAULTS.maxResourcesPerUser;
const MESSAGES = 20;
/** Redis bytes sent to clients per routed message: the bindings of 32 resources fit easily. */
const MAX_BYTES_PER_MESSAGE = 8 * 1024;

async function outputBytes(admin: Redis): Promise<number> {
  const stats = await admin.info("stats");
  return Number(/total_net_output_bytes:(\d+)/.exec(stats)?.[1]);
}

describe("route lookup cost in Redis (32 resources with large presences)", function () {
  this.timeout(20000);
  let server: RedisServer;
  let redis: Redis;
  let admin: Redis;

  before(async () => {
    server = await startRedis();
    redis = connect(server.url);
    admin = connect(server.url);
  });
  after(async () => {
    redis?.disconnect();
    admin?.disconnect();
    await server?.stop();
  });

  it("reads only routing data per routed message, not the presences", async () => {
    const routes = new RedisRouteStore(redis, redisKeys(uniquePrefix()));
    const ctx = new TestSessionContext({ stores: { routes } });
    await ctx.createAccount(BOB);
    const status = "s".repeat(DEFAULTS.maxPresenceBytes - 200);
    for (let i = 0; i < RESOURCES; i++) {
      await routes.bind(BOB, `r${i}`, `edge.0.c${i}`, RESOURCES);
      const presence = `<presence from="${BOB}/r${i}"><status>${status}</status></presence>`;
      await routes.update(BOB, `r${i}`, `edge.0.c${i}`, { presence, priority: i === 7 ? 5 : 0 });
    }
    const stored = await routes.presences(BOB);
    assert.equal(stored.length, RESOURCES);
    assert.ok(stored.every((r) => Buffer.byteLength(r.presence) > DEFAULTS.maxPresenceBytes - 200));

    // Each INFO reply is counted in the next one: measure it alone and take it off.
    const first = await outputBytes(admin);
    const infoReply = (await outputBytes(admin)) - first;
    const before = await outputBytes(admin);
    for (let i = 0; i < MESSAGES; i++) {
      const message = parse(
        `<message xmlns="jabber:client" type="chat" from="alice@example.com/pc" to="${BOB}"><body>m${i}</body></message>`,
      );
      await routeMessage(ctx, parseJid(BOB), message);
    }
    const perMessage = ((await outputBytes(admin)) - before - infoReply) / MESSAGES;
    process.stdout.write(`      Redis bytes read per routed message: ${Math.round(perMessage)}\n`);
    // Routed to the one resource of the highest priority, every time.
    assert.equal(ctx.delivered.get("edge.0.c7")?.length, MESSAGES);
    assert.ok(
      perMessage < MAX_BYTES_PER_MESSAGE,
      `${Math.round(perMessage)} bytes per message (bound ${MAX_BYTES_PER_MESSAGE})`,
    );
  });
});
