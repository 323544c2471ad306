// RFC 6120 §7.7.2.2 across session processes: a resource taken over from a connection served
// by the other session process. The kicked connection's unavailable must never reach a
// contact after the new connection's available (see features/presence/broadcast.ts).
import assert from "node:assert/strict";
import type { Element } from "ltx";
import { Mesh, type EdgeProcess } from "../helpers/cluster.js";
import { TestUser, isMessageFrom, isPresenceFrom, xml } from "../helpers/xmpp-client.js";

const ROUNDS = 50;
const DESK = "alice@localhost/desk";

describe("e2e: resource takeover across 2 session processes", function () {
  this.timeout(60000);
  let mesh: Mesh;
  const edges: EdgeProcess[] = [];
  const users: TestUser[] = [];

  async function login(edge: EdgeProcess, username: string, resource: string) {
    const user = await TestUser.connect({
      service: edge.url,
      username,
      password: `${username}-pw`,
      resource,
    });
    users.push(user);
    return user;
  }

  before(async function () {
    mesh = await Mesh.start({ shardCount: 8 });
    await Promise.all([mesh.session("s1", "0-3"), mesh.session("s2", "4-7")]);
    // One shard per edge: every connection of an edge is in one shard of one session, so a
    // stanza sent there after the kick is handled after the kicked connection's end.
    edges.push(...(await Promise.all([mesh.edge("e1", "0"), mesh.edge("e2", "4")])));
    for (const name of ["alice", "bob", "carol"])
      await mesh.addUser(`${name}@localhost`, `${name}-pw`);
  });

  after(async () => {
    await Promise.all(users.map((u) => u.stop()));
    await mesh?.stop();
  });

  it(`leaves the contact seeing the resource available after each of ${ROUNDS} takeovers`, async () => {
    const carol = await login(edges[0], "carol", "phone");
    // One marker user per session process (see below).
    const markers = [await login(edges[0], "bob", "m1"), await login(edges[1], "bob", "m2")];
    let holder = await login(edges[0], "alice", "desk");
    await holder.send(xml("presence"));
    // carol subscribes to alice, who approves: carol gets alice's presence.
    await carol.send(xml("presence"));
    await carol.send(xml("presence", { to: "alice@localhost", type: "subscribe" }));
    await holder.waitFor(isPresenceFrom("carol@localhost", "subscribe"), "carol's request");
    await holder.send(xml("presence", { to: "carol@localhost", type: "subscribed" }));
    await carol.waitFor(isPresenceFrom(DESK), "alice's presence");

    // Every presence carol gets from alice's desk, in order.
    const seen: (string | undefined)[] = [];
    carol.xmpp.on("stanza", (el: Element) => {
      if (el.is("presence") && el.attrs.from === DESK) seen.push(el.attrs.type);
    });

    let availableLast = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      // The new connection is on the other session process than the one it takes over from.
      const oldSide = (round + 1) % 2;
      const newSide = round % 2;
      const kicked = new Promise((resolve) => holder.xmpp.once("disconnect", resolve));
      const from = seen.length;
      const next = await login(edges[newSide], "alice", "desk");
      await next.send(xml("presence"));
      await kicked;
      await carol.waitFor(isPresenceFrom(DESK), `alice's available in round ${round}`);
      // A barrier: a message through the old holder's process, sent after its connection
      // ended there, reaches carol after anything that end sent her.
      await markers[oldSide].send(
        xml("message", { to: "carol@localhost" }, xml("body", {}, `r${round}`)),
      );
      await carol.waitFor(isMessageFrom("bob@localhost", `r${round}`), `barrier ${round}`);
      const got = seen.slice(from).map((type) => type ?? "available");
      if (got.at(-1) === "available") availableLast++;
      else assert.fail(`round ${round}: carol saw ${got.join(", ")} from ${DESK}`);
      users.splice(users.indexOf(holder), 1);
      await holder.stop();
      holder = next;
    }
    process.stdout.write(
      `      contact's last presence was available after ${availableLast}/${ROUNDS} takeovers\n`,
    );
    assert.equal(availableLast, ROUNDS);
  });
});
