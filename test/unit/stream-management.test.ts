// XEP-0198 on one stream (features/sm/): §3 enabling, §4 acks and counters (h wraps at 2^32),
// §5 the resume request, checked with literal XML through the real session core.
import { strict as assert } from "node:assert";
import { newConnState, type ConnState } from "../../services/session/core/connection.js";
import { ConnectionTable } from "../../services/session/io/connection-table.js";
import type { HandlerChain } from "../../services/session/core/handler-chain.js";
import {
  H_MODULUS,
  ackedTotal,
  parseH,
  shardOfSmId,
  wireH,
} from "../../services/session/features/sm/sm-state.js";
import { buildHandlerChain } from "../../services/session/session-service.js";
import { TestSessionContext, assertXmlList, input } from "../helpers/session-context.js";

const SM = "urn:xmpp:sm:3";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const ALICE = "alice@example.com";

describe("stream management counters and ids (XEP-0198 §4, §5)", () => {
  it("puts totals on the wire modulo 2^32", () => {
    assert.equal(wireH(5), "5");
    assert.equal(wireH(H_MODULUS + 3), "3");
  });

  it("reads an acknowledged h as a total that never goes back, across the wrap", () => {
    assert.equal(ackedTotal(0, 0), 0);
    assert.equal(ackedTotal(10, 15), 15);
    assert.equal(ackedTotal(H_MODULUS - 2, 1), H_MODULUS + 1);
    assert.equal(ackedTotal(H_MODULUS + 5, 7), H_MODULUS + 7);
    assert.equal(ackedTotal(10, 5), 10, "a stale h acknowledges nothing new");
    assert.equal(ackedTotal(3, H_MODULUS - 1), 3, "nor one from before a wrap");
  });

  it("accepts only unsigned 32-bit integers as h", () => {
    assert.equal(parseH("0"), 0);
    assert.equal(parseH("4294967295"), H_MODULUS - 1);
    for (const bad of [undefined, "", "-1", "4294967296", "1.5", "0x10", " 1"])
      assert.equal(parseH(bad), undefined, String(bad));
  });

  it("finds the shard an id names, and nothing in a malformed or foreign id", () => {
    assert.equal(shardOfSmId("3.AbC-_9", 8), 3);
    for (const bad of ["8.abc", "x.abc", "3", "3.", "3.a b", "-1.a", "03a.b"])
      assert.equal(shardOfSmId(bad, 8), undefined, bad);
  });
});

describe("stream management on one stream (XEP-0198)", () => {
  let ctx: TestSessionContext;
  let chain: HandlerChain;
  let phone: ConnState;
  let bob: ConnState;

  beforeEach(async () => {
    ctx = new TestSessionContext({ config: { resumptionTimeoutMs: 90000 } });
    chain = buildHandlerChain();
    phone = await ctx.connect(`${ALICE}/phone`, { shard: 5 });
    bob = await ctx.connect("bob@example.com/pc");
  });

  async function enable(): Promise<string> {
    await input(ctx, chain, phone, `<enable xmlns="${SM}" resume="true"/>`);
    const id = phone.sm?.id as string;
    assertXmlList(ctx.received(phone), [
      `<enabled xmlns="${SM}" id="${id}" resume="true" max="90"/>`,
    ]);
    ctx.clearOutput();
    return id;
  }

  it("§3: enables after binding with an id naming the connection's shard, and max in seconds", async () => {
    const id = await enable();
    assert.match(id, /^5\.[A-Za-z0-9_-]+$/);
    assert.deepEqual(phone.sm, { id, resume: true, handled: 0, sent: 0, acked: 0 });
  });

  it("§3: enables without resumption when not asked for it", async () => {
    await input(ctx, chain, phone, `<enable xmlns="${SM}"/>`);
    assertXmlList(ctx.received(phone), [`<enabled xmlns="${SM}" id="*"/>`]);
    assert.equal(phone.sm?.resume, false);
  });

  it("§3: refuses a second enable, and an enable before binding, with unexpected-request", async () => {
    await enable();
    await input(ctx, chain, phone, `<enable xmlns="${SM}" resume="true"/>`);
    const binding = await ctx.connect(`${ALICE}/laptop`);
    binding.stage = "restarted";
    await input(ctx, chain, binding, `<enable xmlns="${SM}"/>`);
    const failed = `<failed xmlns="${SM}"><unexpected-request xmlns="${STANZAS}"/></failed>`;
    assertXmlList(ctx.received(phone), [failed]);
    assertXmlList(ctx.received(binding), [failed]);
    assert.equal(binding.sm, undefined);
  });

  it("§4: counts the stanzas it handles and answers <r/> with h", async () => {
    await input(ctx, chain, phone, `<r xmlns="${SM}"/>`);
    assertXmlList(ctx.received(phone), [], "nothing to answer before enabling");
    await enable();
    await input(
      ctx,
      chain,
      phone,
      `<message to="bob@example.com/pc" type="chat"><body>1</body></message>`,
    );
    await input(ctx, chain, phone, `<presence/>`);
    await input(ctx, chain, phone, `<r xmlns="${SM}"/>`);
    assert.equal((ctx.sent.get(phone.connId) ?? []).at(-1), `<a xmlns="${SM}" h="2"/>`);
    assert.equal(phone.sm?.handled, 2);
    assert.equal(ctx.received(bob).length, 1);
  });

  it("§4: forgets acknowledged stanzas once the unit's writes are stored", async () => {
    const id = await enable();
    const { smQueues } = ctx.stores;
    for (let seq = 1; seq <= 3; seq++) await smQueues.push(5, id, seq, `<message id="${seq}"/>`);
    phone.sm!.sent = 3;
    await input(ctx, chain, phone, `<a xmlns="${SM}" h="2"/>`);
    assert.equal(phone.sm?.acked, 2);
    assert.deepEqual(await smQueues.range(5, id, 1, 3), ['<message id="3"/>']);
    await input(ctx, chain, phone, `<a xmlns="${SM}" h="1"/>`);
    assert.equal(phone.sm?.acked, 2, "an old h acknowledges nothing new");
    assert.deepEqual(ctx.closed, []);
  });

  it("§4: ends the stream when h acknowledges more than was sent", async () => {
    await enable();
    await input(ctx, chain, phone, `<a xmlns="${SM}" h="1"/>`);
    assert.deepEqual(
      ctx.closed.map((c) => c.condition),
      ["undefined-condition"],
    );
  });

  it("§5: sends a resume after SASL to the session's shard and waits for the answer", async () => {
    const resuming = await ctx.connect(`${ALICE}/other`);
    resuming.stage = "restarted";
    await input(ctx, chain, resuming, `<resume xmlns="${SM}" previd="3.abc" h="7"/>`);
    assert.equal(resuming.stage, "resuming");
    assert.deepEqual(ctx.resumeRequests, [
      { connId: resuming.connId, request: { previd: "3.abc", h: 7, jid: ALICE } },
    ]);
    await input(
      ctx,
      chain,
      resuming,
      `<iq type="set" id="b"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>`,
    );
    assertXmlList(ctx.received(resuming), [], "frames wait while resuming");
  });

  it("§5: answers a malformed id with item-not-found and a resume after binding with unexpected-request", async () => {
    const resuming = await ctx.connect(`${ALICE}/other`);
    resuming.stage = "restarted";
    await input(ctx, chain, resuming, `<resume xmlns="${SM}" previd="99.abc" h="0"/>`);
    await input(ctx, chain, phone, `<resume xmlns="${SM}" previd="1.abc" h="0"/>`);
    assertXmlList(ctx.received(resuming), [
      `<failed xmlns="${SM}"><item-not-found xmlns="${STANZAS}"/></failed>`,
    ]);
    assertXmlList(ctx.received(phone), [
      `<failed xmlns="${SM}"><unexpected-request xmlns="${STANZAS}"/></failed>`,
    ]);
    assert.equal(resuming.stage, "restarted", "it may still bind");
    assert.deepEqual(ctx.resumeRequests, []);
  });
});

describe("the connection table's stream management index", () => {
  function connWithSm(connId: string, lastEntryId: string, smId: string): ConnState {
    const conn = newConnState(connId, "e", 0, 0);
    conn.lastEntryId = lastEntryId;
    conn.sm = { id: smId, resume: true, handled: 0, sent: 0, acked: 0 };
    return conn;
  }

  it("finds a session's connection, also one enabled after it was set", () => {
    const table = new ConnectionTable();
    const conn = newConnState("e.0.1", "e", 0, 0);
    table.set(conn);
    assert.equal(table.connOfSm("0.x"), undefined);
    conn.sm = { id: "0.x", resume: true, handled: 0, sent: 0, acked: 0 };
    assert.equal(table.connOfSm("0.x"), "e.0.1");
    table.delete("e.0.1");
    assert.equal(table.connOfSm("0.x"), undefined);
  });

  it("gives a session left in two snapshots to the one that applied the later entry", () => {
    for (const order of [0, 1]) {
      const table = new ConnectionTable();
      const stale = connWithSm("e.0.1", "5-0", "0.s");
      const moved = connWithSm("f.0.9", "7-0", "0.s");
      for (const conn of order ? [stale, moved] : [moved, stale]) table.set(conn);
      assert.equal(table.connOfSm("0.s"), "f.0.9");
    }
  });
});
