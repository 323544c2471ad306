// A rolling update of an edge (issue 7; DESIGN.md failure model, "scale down / rolling update"):
// SIGTERM to an edge holding 20 clients. Its /readyz turns 503 and it refuses upgrades before
// the first client is closed; the closes are spread over the drain window, each a WebSocket
// 1001 without a stream error or <close/> (so a client with XEP-0198 could resume); every
// message sent to those clients during the drain is delivered once, stored offline or bounced;
// and each client logs in again through the other edge. Real redis-server, edge and session
// processes, real clients.
import assert from "node:assert/strict";
import { drainSliceCount } from "../../services/edge/drain.js";
import { accountFor, assertAccounted } from "../helpers/accounting.js";
import { Mesh, type EdgeProcess } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { RawClient } from "../helpers/raw-client.js";
import { report } from "../helpers/report.js";
import { TestUser, xml } from "../helpers/xmpp-client.js";

const CLIENTS = 20;
const DRAIN_DELAY_MS = 500;
const DRAIN_WINDOW_MS = 2000;
/** Alice's pace while the edge drains: one message every this many ms, round robin. */
const SEND_INTERVAL_MS = 25;
/** Users created at once (each is a `megaphone user add` process). */
const USER_ADD_BATCH = 5;

const bodyOf = (frame: string) => /<body>(m-\d+)<\/body>/.exec(frame)?.[1];
const userName = (i: number) => `drained${i}`;

describe("e2e: an edge drains on SIGTERM", function () {
  this.timeout(90000);
  let mesh: Mesh;
  let other: EdgeProcess;

  before(async function () {
    this.timeout(90000);
    mesh = await Mesh.start({ shardCount: 4 });
    await mesh.session("s1", "");
    other = await mesh.edge("e1", "");
    const names = ["alice", ...Array.from({ length: CLIENTS }, (_, i) => userName(i))];
    for (let i = 0; i < names.length; i += USER_ADD_BATCH)
      await Promise.all(
        names.slice(i, i + USER_ADD_BATCH).map((n) => mesh.addUser(`${n}@localhost`, "pw")),
      );
  });

  after(async () => mesh?.stop());

  it("fails readiness first, closes its 20 clients spread over the window as a lost transport, and loses no message", async () => {
    const draining = await mesh.edge("e2", "", {
      MEGAPHONE_DRAIN_DELAY_MS: String(DRAIN_DELAY_MS),
      MEGAPHONE_DRAIN_WINDOW_MS: String(DRAIN_WINDOW_MS),
    });
    const alice = await TestUser.connect({
      service: other.url,
      username: "alice",
      password: "pw",
    });
    const clients: RawClient[] = [];
    const again: RawClient[] = [];
    try {
      for (let i = 0; i < CLIENTS; i++) {
        const client = await RawClient.connect(draining.url);
        clients.push(client);
        await client.login(userName(i), "pw", "phone");
        client.answerPings();
        client.send("<presence xmlns='jabber:client'/>");
      }
      const sent: string[] = [];
      const send = (i: number): Promise<void> => {
        const id = `m-${sent.length + 1}`;
        sent.push(id);
        const to = `${userName(i)}@localhost`;
        return alice.send(xml("message", { to, type: "chat", id }, xml("body", {}, id)));
      };
      // Live first: each client gets one before the drain starts.
      for (let i = 0; i < CLIENTS; i++) {
        await send(i);
        const id = sent[sent.length - 1];
        await clients[i].waitFrame((f) => bodyOf(f) === id, `live message ${id}`);
      }

      const closedAt: number[] = [];
      const allClosed = Promise.all(
        clients.map((c, i) => c.closed.then((closed) => ((closedAt[i] = Date.now()), closed))),
      );
      const termAt = Date.now();
      const stopped = draining.stop("SIGTERM");
      // alice writes to every client, round robin, all through the drain and one round after.
      let stillOpen = true;
      void allClosed.then(() => (stillOpen = false));
      const sending = (async () => {
        for (let n = 0; stillOpen && n < 10000; n++) {
          await send(n % CLIENTS);
          await new Promise((resolve) => setTimeout(resolve, SEND_INTERVAL_MS));
        }
        for (let i = 0; i < CLIENTS; i++) await send(i);
      })();

      await until(
        async () => (await fetch(`http://127.0.0.1:${draining.port}/readyz`)).status === 503,
        "/readyz 503 after SIGTERM",
        5000,
        10,
      );
      const notReadyAt = Date.now();
      const refused = await RawClient.connect(draining.url)
        .then((c) => (c.terminate(), 0))
        .catch((err: { status?: number }) => err.status ?? -1);
      assert.equal(refused, 503, "an upgrade during the drain is refused with 503");

      const closes = await allClosed;
      await sending;
      assert.equal(await stopped, 0, `the drained edge exits 0:\n${draining.output()}`);

      const times = closedAt.map((t) => t - termAt).sort((a, b) => a - b);
      const first = times[0];
      const span = times[CLIENTS - 1] - first;
      const perSlice = Math.ceil(CLIENTS / drainSliceCount(DRAIN_WINDOW_MS));
      const crowd = mostWithin(times, 30);
      report(
        `/readyz 503 after ${notReadyAt - termAt} ms; closes at ${times.join(",")} ms after SIGTERM; span ${span} ms; at most ${crowd} within 30 ms (${perSlice} per slice)`,
      );
      assert.ok(notReadyAt < termAt + first, "/readyz turned 503 before the first close");
      assert.ok(first >= DRAIN_DELAY_MS - 100, `first close ${first} ms after SIGTERM`);
      assert.ok(span >= DRAIN_WINDOW_MS / 2, `closes span ${span} ms`);
      assert.ok(crowd <= perSlice + 1, `${crowd} closes within 30 ms`);
      for (const [i, closed] of closes.entries()) {
        assert.equal(closed.code, 1001, `client ${i} close code`);
        const ends = clients[i].frames.filter(
          (f) => f.includes("<close") || f.includes("<stream:error"),
        );
        assert.deepEqual(ends, [], `client ${i} got a stream end`);
      }

      // Each logs in again through the other edge; what was stored comes with its presence,
      // before the answer to its ping.
      for (let i = 0; i < CLIENTS; i++) {
        const client = await RawClient.connect(other.url);
        again.push(client);
        await client.login(userName(i), "pw", "phone");
        client.send("<presence xmlns='jabber:client'/>");
        client.send(
          "<iq xmlns='jabber:client' type='get' id='barrier'><ping xmlns='urn:xmpp:ping'/></iq>",
        );
        await client.waitFrame((f) => f.includes('id="barrier"'), `${userName(i)}'s ping answer`);
      }
      await alice.ping();

      const ids = (frames: string[]) =>
        frames.map(bodyOf).filter((id): id is string => id !== undefined);
      const live = clients.flatMap((c) => ids(c.frames));
      const offline = again.flatMap((c) => ids(c.frames));
      const bounced = alice.inbox
        .filter((el) => el.is("message") && el.attrs.type === "error")
        .map((el) => el.attrs.id);
      const accounting = accountFor(sent, {
        "delivered live": live,
        "stored offline": offline,
        bounced,
      });
      report(accounting.summary);
      assertAccounted(accounting);
      assert.ok(offline.length >= CLIENTS, "the messages sent after the drain are stored");
    } finally {
      await alice.stop();
      for (const client of [...clients, ...again]) client.terminate();
    }
  });

  it("closes what is left at once on a second SIGTERM, and still exits 0", async () => {
    const draining = await mesh.edge("e3", "", {
      MEGAPHONE_DRAIN_DELAY_MS: "200",
      MEGAPHONE_DRAIN_WINDOW_MS: "10000",
    });
    const clients: RawClient[] = [];
    try {
      for (let i = 0; i < 5; i++) clients.push(await RawClient.connect(draining.url));
      const termAt = Date.now();
      const stopped = draining.stop("SIGTERM");
      await Promise.race(clients.map((c) => c.closed));
      const secondAt = Date.now();
      void draining.stop("SIGTERM");
      const closes = await Promise.all(clients.map((c) => c.waitClosed(2000)));
      const lastAt = Date.now();
      assert.equal(await stopped, 0, `exit code:\n${draining.output()}`);
      report(
        `first close ${secondAt - termAt} ms after SIGTERM; the other 4 within ${lastAt - secondAt} ms of the second`,
      );
      assert.ok(lastAt - secondAt < 1000, "the rest closed at once");
      for (const closed of closes) assert.equal(closed.code, 1001);
    } finally {
      for (const client of clients) client.terminate();
    }
  });
});

/** The most values of sorted `times` that fall within any span of `ms`. */
function mostWithin(times: number[], ms: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i] - times[j] > ms) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}
