// Strophe.js 5.0.0 (a client no one here wrote) over BOSH, in headless Chromium: it logs in
// with SCRAM, fetches its roster and chats both ways with an @xmpp/client WebSocket user,
// through two edges behind a load balancer that spreads consecutive requests over both (BOSH
// is not sticky). Then the edge holding its long-poll is killed (SIGKILL): the session goes on
// through the other edge, and every message of both users arrives exactly once, in order.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Browser, Page, Route } from "playwright-core";
import { Mesh, type EdgeProcess } from "../helpers/cluster.js";
import { launchChromium } from "../helpers/headless-chromium.js";
import { until } from "../helpers/poll.js";
import { TestUser, isMessageFrom, xml } from "../helpers/xmpp-client.js";

/** The browser build of the package (its exports map offers only the module entries). */
const STROPHE_DIR = fileURLToPath(new URL("../../../node_modules/strophe.js/", import.meta.url));
const STROPHE_JS = readFileSync(`${STROPHE_DIR}dist/strophe.umd.min.js`, "utf8");
const STROPHE_VERSION = (
  JSON.parse(readFileSync(`${STROPHE_DIR}package.json`, "utf8")) as { version: string }
).version;

/** The page's origin: localhost is a secure context, so SCRAM has WebCrypto. */
const ORIGIN = "http://localhost:7";
const MESSAGES_EACH_WAY = 6;

/** What the page keeps of Strophe (in the browser). */
const PAGE_SCRIPT = `
// The UMD build sets globalThis.Strophe, $iq, $msg and $pres itself (older apps' globals).
window.mp = {
  received: [], sent: [], status: [],
  connect(jid, password) {
    const conn = new Strophe.Connection("/http-bind");
    this.conn = conn;
    conn.xmlOutput = (el) => this.sent.push(new XMLSerializer().serializeToString(el));
    conn.addHandler((m) => {
      const body = m.getElementsByTagName("body")[0];
      if (body) this.received.push(body.textContent);
      return true;
    }, null, "message", "chat");
    return new Promise((resolve, reject) => {
      conn.connect(jid, password, (status, condition) => {
        this.status.push(status);
        if (status === Strophe.Status.CONNECTED) resolve(conn.jid);
        else if (status === Strophe.Status.AUTHFAIL || status === Strophe.Status.CONNFAIL)
          reject(new Error("strophe status " + status + " " + condition));
      }, 10, 1);
    });
  },
  roster() {
    return new Promise((resolve, reject) =>
      this.conn.sendIQ($iq({ type: "get" }).c("query", { xmlns: "jabber:iq:roster" }),
        (iq) => resolve(iq.getAttribute("type") + ":" + iq.getElementsByTagName("query").length),
        (err) => reject(new Error("roster failed " + (err && err.outerHTML)))));
  },
  say(to, text) {
    this.conn.send($msg({ to, type: "chat" }).c("body").t(text));
  },
  presence() {
    this.conn.send($pres());
  },
};
`;

interface Upstream {
  edge: EdgeProcess;
  alive: boolean;
  /** Requests forwarded and not answered yet. */
  inflight: number;
  served: number;
}

/**
 * A load balancer in the browser's network stack: each /http-bind request goes to the next
 * live edge (or to the preferred one), and a request its edge drops is answered 502, which
 * BOSH clients retry with the same rid.
 */
class LoadBalancer {
  prefer: number | undefined;
  /** Requests an edge dropped (answered 502 for the client to retry). */
  dropped = 0;
  private next = 0;
  constructor(readonly upstreams: Upstream[]) {}

  private pick(): Upstream {
    const alive = this.upstreams.filter((u) => u.alive);
    if (this.prefer !== undefined && this.upstreams[this.prefer].alive)
      return this.upstreams[this.prefer];
    return alive[this.next++ % alive.length];
  }

  async handle(route: Route): Promise<void> {
    const upstream = this.pick();
    upstream.inflight++;
    upstream.served++;
    try {
      const response = await route.fetch({
        url: `http://127.0.0.1:${upstream.edge.port}/http-bind`,
        timeout: 0,
      });
      await route.fulfill({ response });
    } catch {
      this.dropped++;
      await route.fulfill({ status: 502, body: "edge gone" }).catch(() => undefined);
    } finally {
      upstream.inflight--;
    }
  }
}

describe("e2e: Strophe.js over BOSH in headless Chromium", function () {
  this.timeout(120000);
  let mesh: Mesh;
  let edges: EdgeProcess[];
  let browser: Browser;
  let page: Page;

  before(async function () {
    this.timeout(300000); // an apt-get install of chromium on a machine without it
    browser = await launchChromium();
    mesh = await Mesh.start({
      shardCount: 4,
      env: {
        // A dead edge is noticed quickly, so that the test shows BOSH sessions outlive it.
        MEGAPHONE_EDGE_HEARTBEAT_INTERVAL_MS: "250",
        MEGAPHONE_EDGE_HEARTBEAT_TTL_MS: "1500",
      },
    });
    await mesh.session("s1", "");
    edges = [await mesh.edge("e1", ""), await mesh.edge("e2", "")];
    await mesh.addUser("alice@localhost", "pw");
    await mesh.addUser("bob@localhost", "pw");
  });

  after(async () => {
    await browser?.close();
    await mesh?.stop();
  });

  it(`Strophe ${STROPHE_VERSION} logs in with SCRAM, chats, and survives the loss of its edge`, async () => {
    const lb = new LoadBalancer(
      edges.map((edge) => ({ edge, alive: true, inflight: 0, served: 0 })),
    );
    page = await browser.newPage();
    await page.route(`${ORIGIN}/**`, async (route) => {
      const url = new URL(route.request().url());
      if (url.pathname === "/http-bind") return lb.handle(route);
      await route.fulfill({
        contentType: "text/html",
        body: "<!doctype html><title>strophe</title>",
      });
    });
    await page.goto(`${ORIGIN}/`);
    await page.addScriptTag({ content: STROPHE_JS });
    await page.addScriptTag({ content: PAGE_SCRIPT });

    // Bob is on the edge that will survive.
    const bob = await TestUser.connect({ service: edges[1].url, username: "bob", password: "pw" });
    const aliceJid = await page.evaluate(() =>
      (
        globalThis as unknown as { mp: { connect(j: string, p: string): Promise<string> } }
      ).mp.connect("alice@localhost", "pw"),
    );
    assert.match(aliceJid, /^alice@localhost\/.+/);
    const sent = await page.evaluate(
      () => (globalThis as unknown as { mp: { sent: string[] } }).mp.sent,
    );
    assert.ok(
      sent.some((s) => /mechanism="SCRAM-SHA-(1|256)"/.test(s)),
      `logged in with SCRAM: ${sent.find((s) => s.includes("mechanism="))}`,
    );
    const roster = await page.evaluate(() =>
      (globalThis as unknown as { mp: { roster(): Promise<string> } }).mp.roster(),
    );
    assert.equal(roster, "result:1");
    await page.evaluate(() =>
      (globalThis as unknown as { mp: { presence(): void } }).mp.presence(),
    );

    const say = (text: string) =>
      page.evaluate(
        ([to, body]) =>
          (globalThis as unknown as { mp: { say(t: string, b: string): void } }).mp.say(to, body),
        [bob.jid, text] as const,
      );
    const received = () =>
      page.evaluate(() => (globalThis as unknown as { mp: { received: string[] } }).mp.received);
    const bobSays = (text: string) =>
      bob.send(xml("message", { to: aliceJid, type: "chat" }, xml("body", {}, text)));

    await say("s-1");
    await bob.waitFor(isMessageFrom(aliceJid, "s-1"), "s-1");
    await bobSays("w-1");
    await until(async () => (await received()).includes("w-1"), "alice got w-1");
    assert.ok(
      lb.upstreams.every((u) => u.served > 0),
      `requests went through both edges: ${lb.upstreams.map((u) => u.served)}`,
    );

    // Kill the edge holding Strophe's long-poll (steered to e1 first).
    lb.prefer = 0;
    await say("s-2"); // a request through e1; the long-poll after it is held there
    await bob.waitFor(isMessageFrom(aliceJid, "s-2"), "s-2");
    await until(() => lb.upstreams[0].inflight > 0, "a long-poll held at e1");
    await edges[0].stop("SIGKILL");
    lb.upstreams[0].alive = false;
    lb.prefer = undefined;

    for (let i = 2; i <= MESSAGES_EACH_WAY; i++) await bobSays(`w-${i}`);
    for (let i = 3; i <= MESSAGES_EACH_WAY; i++) await say(`s-${i}`);
    for (let i = 3; i <= MESSAGES_EACH_WAY; i++)
      await bob.waitFor(isMessageFrom(aliceJid, `s-${i}`), `s-${i}`, 20000);
    const expected = Array.from({ length: MESSAGES_EACH_WAY }, (_, i) => `w-${i + 1}`);
    await until(
      async () => (await received()).length >= MESSAGES_EACH_WAY,
      "alice got every message",
      20000,
    );
    // A last round trip each way, then nothing may have come twice.
    await bobSays("end");
    await until(async () => (await received()).includes("end"), "alice got the marker", 20000);
    assert.deepEqual(await received(), [...expected, "end"], "each once, in order");
    await say("end");
    await bob.waitFor(isMessageFrom(aliceJid, "end"), "the marker");
    assert.equal(
      bob.inbox.filter((el) => el.is("message") && el.getChildText("body")?.startsWith("s-"))
        .length,
      0,
      "bob got no duplicate",
    );
    assert.ok(lb.upstreams[1].served > 0);
    assert.ok(lb.dropped > 0, "a request was lost with its edge and asked again elsewhere");
    await bob.stop();
  });
});
