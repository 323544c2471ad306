// The authentication deadline through the real mesh (Redis + edge + session processes): a
// connection that has not bound a resource authTimeoutMs after it opened is closed with a
// `connection-timeout` stream error however chatty it is, while a user who logged in normally
// on the same edge stays connected.
import assert from "node:assert/strict";
import { Mesh, type EdgeProcess } from "../helpers/cluster.js";
import { RawClient, isStreamError } from "../helpers/raw-client.js";
import { Running } from "../helpers/running.js";
import { TestUser } from "../helpers/xmpp-client.js";

const AUTH_TIMEOUT_MS = 1000;
/** The session sweeps every authTimeoutMs / 4; the rest is the trip through Redis and the edge. */
const CLOSE_WITHIN_MS = AUTH_TIMEOUT_MS + 2500;
/** Our clock starts after the upgrade, the session's when it handles `open`: a little earlier. */
const CLOCK_SLACK_MS = 100;

describe("e2e: authentication timeout", function () {
  this.timeout(30000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  const running = new Running();

  before(async function () {
    this.timeout(60000);
    mesh = await Mesh.start({
      shardCount: 4,
      env: { MEGAPHONE_AUTH_TIMEOUT_MS: String(AUTH_TIMEOUT_MS) },
    });
    await mesh.session("s1", "");
    edge = await mesh.edge("e1", "");
    await mesh.addUser("alice@localhost", "alice-pw");
    await mesh.addUser("mallory@localhost", "mallory-pw");
  });

  afterEach(() => running.stopAll());
  after(async () => mesh?.stop());

  /** A raw client with an open stream (SASL features received) and the time it connected. */
  async function opened(): Promise<{ raw: RawClient; connectedAt: number }> {
    const raw = await RawClient.connect(edge.url);
    const connectedAt = Date.now();
    raw.open();
    await raw.waitFrame(
      (f) => f.includes("<stream:features") && f.includes("mechanisms"),
      "features",
    );
    return { raw, connectedAt };
  }

  /** Sends `frame()` every 100 ms until the socket closes. */
  function keepSending(raw: RawClient, frame: () => string): void {
    const timer = setInterval(() => {
      if (raw.ws.readyState === raw.ws.OPEN) raw.send(frame());
    }, 100);
    void raw.closed.then(() => clearInterval(timer));
    // A test failing before its sockets close would leave this running until the mesh stops.
    running.add({ stop: () => clearInterval(timer) });
  }

  /** A SCRAM client-first message: each one restarts the exchange without failing it. */
  const scramStart = () =>
    `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="SCRAM-SHA-256">${Buffer.from(
      `n,,n=mallory,r=${Math.random().toString(36).slice(2)}`,
    ).toString("base64")}</auth>`;

  async function timedOut(raw: RawClient, connectedAt: number, what: string): Promise<void> {
    const frame = await raw.waitFrame(
      isStreamError("connection-timeout"),
      `connection-timeout for ${what}`,
      CLOSE_WITHIN_MS,
    );
    const elapsed = Date.now() - connectedAt;
    assert.ok(
      elapsed >= AUTH_TIMEOUT_MS - CLOCK_SLACK_MS,
      `${what} closed after ${elapsed} ms, before the deadline`,
    );
    assert.match(frame, /<text [^>]*>no resource bound in time<\/text>/);
    await raw.waitFrame((f) => f.startsWith("<close"), `<close/> for ${what}`);
    await raw.waitClosed();
  }

  it("closes connections that do not bind in time, chatty or silent, and keeps a bound user", async () => {
    const alice = await TestUser.connect({
      service: edge.url,
      username: "alice",
      password: "alice-pw",
    });
    const aliceSince = Date.now();
    const silent = await opened();
    const whitespace = await opened();
    keepSending(whitespace.raw, () => " ");
    // Frames that reach the session and are answered, yet never complete authentication.
    const scram = await opened();
    keepSending(scram.raw, scramStart);
    await scram.raw.waitFrame((f) => f.startsWith("<challenge"), "a SCRAM challenge");
    // Never sends <open/>: the session answers with its stream header first.
    const mute = await RawClient.connect(edge.url);
    const muteAt = Date.now();
    // Authenticated but never binds a resource: as unwelcome as a stranger.
    const unbound = await RawClient.connect(edge.url);
    const unboundAt = Date.now();
    unbound.open();
    await unbound.waitFrame((f) => f.includes("mechanisms"), "features");
    const auth = Buffer.from("\0mallory\0mallory-pw").toString("base64");
    unbound.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${auth}</auth>`);
    await unbound.waitFrame((f) => f.startsWith("<success"), "SASL success");
    unbound.open();
    await unbound.waitFrame((f) => f.includes("xmpp-bind"), "bind feature");
    keepSending(unbound, () => " ");
    try {
      await Promise.all([
        timedOut(silent.raw, silent.connectedAt, "the silent client"),
        timedOut(whitespace.raw, whitespace.connectedAt, "the client sending whitespace"),
        timedOut(scram.raw, scram.connectedAt, "the client restarting SASL"),
        timedOut(mute, muteAt, "the client that never opened its stream"),
        timedOut(unbound, unboundAt, "the authenticated but unbound client"),
      ]);
      // RFC 6120 §4.9.1.1: the stream error follows a stream header of the server's own.
      const headerAt = mute.frames.findIndex((f) => f.startsWith("<open"));
      const errorAt = mute.frames.findIndex(isStreamError("connection-timeout"));
      assert.ok(headerAt >= 0 && headerAt < errorAt, mute.frames.join("\n"));
      // alice has been connected for longer than the deadline and is still served.
      assert.ok(Date.now() - aliceSince > AUTH_TIMEOUT_MS);
      assert.equal((await alice.ping()).attrs.type, "result");
      assert.equal(alice.xmpp.status, "online");
    } finally {
      await alice.stop();
      for (const raw of [silent.raw, whitespace.raw, scram.raw, mute, unbound]) raw.terminate();
    }
  });
});
