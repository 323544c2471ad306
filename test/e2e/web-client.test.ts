// A web client no one here wrote: the converse.js page the edge serves at `/` (all-in-one, as
// `npm start` runs it), driven in Debian's headless Chromium through playwright-core. alice logs
// in through converse's own login form, gets bob's message (bob is an @xmpp/client WebSocket
// user) and answers from the converse UI; bob gets that answer exactly once. The page must run
// under its Content-Security-Policy without a violation or a page error. Chromium comes from
// Debian's packages (.ci/run installs it); the test installs nothing and fails when it is missing.
// MEGAPHONE_WEB_CLIENT_SCREENSHOT=docs/images/web-client.png saves the logged-in chat.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chromium, type Browser, type Locator, type Page } from "playwright-core";
import { spawnService, waitForHttp, type ServiceProcess } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { freePort } from "../helpers/redis-server.js";
import { report } from "../helpers/report.js";
import {
  isMessageFrom,
  isPresenceFrom,
  loginAs,
  xml,
  type TestUser,
} from "../helpers/xmpp-client.js";

const CHROMIUM = "/usr/bin/chromium";

/** What the page reported that it should not have: CSP violations, errors, failed loads. */
interface PageTrouble {
  violations: string[];
  errors: string[];
  /**
   * converse logs the error answer to a query for a feature this server does not offer (PEP's
   * popular emojis): expected, counted apart.
   */
  unsupported: string[];
}

const UNSUPPORTED_FEATURE = /^<iq [^>]*type="error".*<service-unavailable /;

function watch(page: Page): PageTrouble {
  const trouble: PageTrouble = { violations: [], errors: [], unsupported: [] };
  page.on("pageerror", (err) => trouble.errors.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    if (/Content.Security.Policy|Refused to/i.test(msg.text())) trouble.violations.push(msg.text());
    else if (UNSUPPORTED_FEATURE.test(msg.text())) trouble.unsupported.push(msg.text());
    else trouble.errors.push(`console error: ${msg.text()}`);
  });
  page.on("requestfailed", (req) =>
    trouble.errors.push(`request failed: ${req.url()} ${req.failure()?.errorText}`),
  );
  page.on("response", (res) => {
    if (res.status() >= 400) trouble.errors.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  return trouble;
}

/** Logs alice in through converse's own form; the roster entry of bob once it shows. */
async function logInAlice(page: Page, timeoutMs: number): Promise<Locator> {
  await page.fill("#converse-login-jid", "alice");
  await page.fill("#converse-login-password", "alice-pw");
  await page.click("converse-login-form button[type=submit]");
  const contact = page.locator("converse-roster-contact", { hasText: "bob@localhost" });
  await contact.waitFor({ timeout: timeoutMs });
  return contact;
}

/**
 * alice opens the chat with bob, bob sends `incoming`, alice sees it and answers `answer` from
 * the page, then `marker`: once bob has the marker, a copy of the answer would be in his inbox
 * by then, so he got it once. bob writes only once the chat is open: converse restores its chat
 * boxes from storage after login, and a message that arrives meanwhile is received on the
 * socket but never shown (seen in a run's frames), which is converse's start, not the server.
 */
async function chatWithBob(
  page: Page,
  contact: Locator,
  bob: TestUser,
  { incoming, answer, marker }: { incoming: string; answer: string; marker: string },
): Promise<void> {
  await contact.click();
  await page.waitForSelector("textarea.chat-textarea", { timeout: 15000 });
  await bob.send(
    xml("message", { to: "alice@localhost", type: "chat" }, xml("body", {}, incoming)),
  );
  await page.waitForSelector(`converse-chat-message >> text=${incoming}`, { timeout: 15000 });
  for (const line of [answer, marker]) {
    await page.fill("textarea.chat-textarea", line);
    await page.press("textarea.chat-textarea", "Enter");
    await bob.waitFor(isMessageFrom("alice@localhost", line), `alice's "${line}"`, 15000);
  }
  const copies = bob.inbox.filter(isMessageFrom("alice@localhost", answer));
  assert.equal(copies.length, 0, "the answer was taken once; no copy is left in bob's inbox");
}

describe("e2e: the converse.js web client in headless Chromium", function () {
  this.timeout(60000);
  let server: ServiceProcess;
  let port: number;
  let browser: Browser;
  let bob: TestUser;
  const users: TestUser[] = [];

  before(async function () {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)`,
    );
    port = await freePort();
    server = spawnService("all-in-one", [
      "start",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--user",
      "alice@localhost:alice-pw",
      "--user",
      "bob@localhost:bob-pw",
    ]);
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, server);
    // What a newcomer opens: `npm start` prints it next to the WebSocket URL.
    const printed = new RegExp(`web client: +http://127\\.0\\.0\\.1:${port}/ `);
    await until(() => printed.test(server.output()), "the web client URL printed at start");
    // alice and bob are contacts (subscription both), as two people who chat would be: alice's
    // converse shows bob in its roster.
    const service = `ws://127.0.0.1:${port}/xmpp-websocket`;
    const alice = await loginAs(users, service, "alice", { resource: "setup" });
    bob = await loginAs(users, service, "bob");
    for (const user of [alice, bob]) await user.send(xml("presence")); // available: hears requests
    await alice.send(xml("presence", { to: "bob@localhost", type: "subscribe" }));
    await bob.waitFor(isPresenceFrom("alice@localhost", "subscribe"), "alice's request");
    await bob.send(xml("presence", { to: "alice@localhost", type: "subscribed" }));
    await bob.send(xml("presence", { to: "alice@localhost", type: "subscribe" }));
    await alice.waitFor(isPresenceFrom("bob@localhost", "subscribe"), "bob's request");
    await alice.send(xml("presence", { to: "bob@localhost", type: "subscribed" }));
    // With a subscription each way, each gets the other's presence.
    await bob.waitFor(isPresenceFrom("alice@localhost", undefined), "alice's presence");
    await alice.waitFor(isPresenceFrom("bob@localhost", undefined), "bob's presence");
    await alice.stop();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    report(`Chromium ${browser.version()}`);
  });

  after(async () => {
    for (const user of users) await user.stop();
    await browser?.close();
    await server?.stop();
  });

  it("logs alice in through the page, under its CSP, and chats with a WebSocket user", async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 640 } });
    const trouble = watch(page);
    // Violations are also events in the page: they are counted even when nothing logs them.
    // (Page code as text: this project compiles without the DOM's types.)
    await page.addInitScript({
      content: `window.cspViolations = [];
        document.addEventListener("securitypolicyviolation", (e) =>
          window.cspViolations.push(e.violatedDirective + " blocked " + e.blockedURI));`,
    });
    const response = await page.goto(`http://127.0.0.1:${port}/`);
    assert.ok(response);
    assert.equal(response.status(), 200);
    const headers = response.headers();
    const csp = new Map(
      (headers["content-security-policy"] ?? "")
        .split(";")
        .map((d) => d.trim().split(/\s+/))
        .map(([name, ...values]) => [name, values.join(" ")]),
    );
    assert.equal(csp.get("default-src"), "'none'");
    assert.equal(csp.get("script-src"), "'self'", "no inline script, no eval");
    assert.equal(headers["x-content-type-options"], "nosniff");

    const contact = await logInAlice(page, 20000);
    await chatWithBob(page, contact, bob, {
      incoming: "hi alice",
      answer: "hi bob",
      marker: "bye bob",
    });
    await page.waitForSelector("converse-chat-message >> text=bye bob");

    const screenshot = process.env.MEGAPHONE_WEB_CLIENT_SCREENSHOT;
    if (screenshot) await page.screenshot({ path: screenshot, type: "png" });
    const violations = [
      ...trouble.violations,
      ...((await page.evaluate("window.cspViolations")) as string[]),
    ];
    assert.deepEqual(violations, []);
    assert.deepEqual(trouble.errors, []);
    report(
      `converse.js logged alice in and chatted with bob: 0 CSP violations, 0 page errors, ` +
        `${trouble.unsupported.length} service-unavailable answer(s) to features not offered (PEP)`,
    );
    await page.close();
  });

  it("chats over BOSH with ?transport=bosh, on a network that refuses WebSockets", async () => {
    const page = await browser.newPage();
    const trouble = watch(page);
    // A network that refuses WebSocket upgrades (some proxies do): the page's ?transport=bosh
    // has converse use the bosh_service_url the edge gave it instead of its websocket_url.
    let upgrades = 0;
    await page.routeWebSocket(/\/xmpp-websocket$/, (ws) => {
      upgrades++;
      void ws.close();
    });
    let boshRequests = 0;
    page.on("request", (req) => {
      if (new URL(req.url()).pathname === "/http-bind") boshRequests++;
    });
    bob.inbox.length = 0; // what alice's earlier page sent is not this login's
    await page.goto(`http://127.0.0.1:${port}/?transport=bosh`);
    const contact = await logInAlice(page, 30000);
    assert.equal(upgrades, 0, "no WebSocket was tried");
    assert.ok(boshRequests >= 2, "logged in over BOSH");
    // Available: bob's message to her bare JID reaches this resource (the first page's may
    // still be hibernating, XEP-0198, and would be the only one otherwise).
    await bob.waitFor(isPresenceFrom("alice@localhost", undefined), "alice's BOSH presence", 15000);

    await chatWithBob(page, contact, bob, {
      incoming: "over bosh?",
      answer: "over bosh!",
      marker: "bosh marker",
    });
    assert.deepEqual(trouble.violations, []);
    report(
      `converse.js over BOSH: ${boshRequests} requests to /http-bind, no WebSocket, ` +
        `messages both ways once`,
    );
    await page.close();
  });
});
