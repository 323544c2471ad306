// Two-hop delivery from the route cache: the bindings a member read last pick the recipient
// of a later message without reading them again, and whatever the write's check says (stale,
// or not a direct write after all) sends the message down the ordinary path, read afresh, so
// the cache never decides alone. The Redis check itself: test/integration/direct-delivery.
import { strict as assert } from "node:assert";
import type { Element } from "ltx";
import type { DirectTarget } from "../../services/session/core/context.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import { RouteCache } from "../../services/session/core/route-cache.js";
import { buildHandlerChain } from "../../services/session/session-service.js";
import type { OnlineResource } from "../../services/shared/stores/route/route-store.js";
import { TestSessionContext, input } from "../helpers/session-context.js";

const ALICE = "alice@example.com";
const BOB = "bob@example.com";

type Outcome = "written" | "stale" | "not-direct";

/** A session context with a route cache, whose direct writes answer what the test says. */
class CachingContext extends TestSessionContext {
  readonly routeCache = new RouteCache(100);
  readonly directWrites: { connId: string; resource: string; current: string }[] = [];
  answer: Outcome = "written";
  /** Reads of Bob's bindings (presence reads the sender's own too). */
  reads = 0;

  constructor() {
    super();
    const routes = this.stores.routes;
    const list = routes.list.bind(routes);
    routes.list = (bareJid: string) => {
      if (bareJid === BOB) this.reads++;
      return list(bareJid);
    };
  }

  async deliverIfCurrent(
    connId: string,
    _stanza: Element,
    target: DirectTarget,
    current: "exact" | "top",
  ): Promise<Outcome> {
    this.directWrites.push({ connId, resource: target.resource, current });
    return this.answer;
  }
}

describe("RouteCache", () => {
  it("keeps at most its capacity, forgetting the user remembered longest ago", () => {
    const cache = new RouteCache(2);
    const none: OnlineResource[] = [];
    cache.remember("a@x", none);
    cache.remember("b@x", none);
    cache.remember("a@x", none); // remembered again: now the newest
    cache.remember("c@x", none);
    assert.deepEqual(
      ["a@x", "b@x", "c@x"].map((u) => cache.get(u) !== undefined),
      [true, false, true],
    );
    assert.equal(cache.size, 2);
    cache.forget("a@x");
    assert.equal(cache.get("a@x"), undefined);
  });

  it("keeps nothing at capacity 0", () => {
    const cache = new RouteCache(0);
    cache.remember("a@x", []);
    assert.equal(cache.size, 0);
  });
});

describe("routing messages from the route cache (two-hop delivery)", () => {
  let ctx: CachingContext;
  let chain: HandlerChain;
  let alice: Awaited<ReturnType<CachingContext["connect"]>>;

  /** Bob's resource, available at `priority`, with an edge senders may write to. */
  async function bobOnline(resource: string, priority: number): Promise<string> {
    const conn = await ctx.connect(`${BOB}/${resource}`);
    await input(ctx, chain, conn, `<presence><priority>${priority}</priority></presence>`);
    await ctx.stores.routes.update(BOB, resource, conn.connId, { edge: "e9:abc" });
    return conn.connId;
  }

  /** Messages delivered to a connection by the ordinary path (presence left out). */
  const messagesTo = (connId: string) =>
    (ctx.delivered.get(connId) ?? []).filter((xml) => xml.startsWith("<message")).length;

  const chat = (to: string, id: string) =>
    input(
      ctx,
      chain,
      alice,
      `<message to="${to}" id="${id}" type="chat"><body>hi</body></message>`,
    );

  beforeEach(async () => {
    ctx = new CachingContext();
    chain = buildHandlerChain();
    alice = await ctx.connect(`${ALICE}/phone`);
  });

  it("reads the bindings for the first message and picks the recipient from the cache after", async () => {
    const phone = await bobOnline("phone", 0);
    const base = ctx.reads;
    await chat(BOB, "m1");
    assert.equal(ctx.reads - base, 1);
    assert.equal(messagesTo(phone), 1, "the first by the ordinary path");
    await chat(BOB, "m2");
    await chat(`${BOB}/phone`, "m3");
    assert.equal(ctx.reads - base, 1, "no read for the cached ones");
    assert.deepEqual(ctx.directWrites, [
      { connId: phone, resource: "phone", current: "top" },
      { connId: phone, resource: "phone", current: "exact" },
    ]);
    assert.equal(messagesTo(phone), 1);
  });

  it("routes afresh and forgets the cached bindings when the write finds them stale", async () => {
    const phone = await bobOnline("phone", 0);
    await chat(BOB, "m1");
    const laptop = await bobOnline("laptop", 5); // the cache still says: phone alone
    const base = ctx.reads;
    ctx.answer = "stale";
    await chat(BOB, "m2");
    assert.equal(ctx.directWrites.length, 1, "tried once from the cache");
    assert.equal(ctx.reads - base, 1, "then read again");
    assert.equal(messagesTo(laptop), 1, "and delivered to the laptop, now the top");
    assert.equal(messagesTo(phone), 1, "the phone got only the first");
    assert.deepEqual(
      ctx.routeCache.get(BOB)?.map((r) => r.resource),
      ["phone", "laptop"],
      "the fresh bindings remembered",
    );
  });

  it("takes the ordinary path, keeping the cache, when the write cannot be direct now", async () => {
    const phone = await bobOnline("phone", 0);
    await chat(BOB, "m1");
    const base = ctx.reads;
    ctx.answer = "not-direct";
    await chat(BOB, "m2");
    assert.equal(ctx.directWrites.length, 1);
    assert.equal(ctx.reads - base, 1);
    assert.equal(messagesTo(phone), 2);
    assert.notEqual(ctx.routeCache.get(BOB), undefined);
  });

  it("does not decide from the cache what needs more than one recipient or no recipient", async () => {
    const phone = await bobOnline("phone", 1);
    const laptop = await bobOnline("laptop", 1);
    const base = ctx.reads;
    await chat(BOB, "m1"); // two resources of the top priority: both get it
    await chat(BOB, "m2");
    await input(
      ctx,
      chain,
      alice,
      `<message to="${BOB}" id="h1" type="headline"><body>news</body></message>`,
    );
    assert.deepEqual(ctx.directWrites, [], "never from the cache");
    assert.equal(ctx.reads - base, 3);
    assert.equal(messagesTo(phone), 3);
    assert.equal(messagesTo(laptop), 3);
  });
});
