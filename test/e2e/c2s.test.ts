// TCP c2s through the real mesh (Redis + edge + session processes): @xmpp/client users log in
// over STARTTLS (RFC 6120 §5) and over direct TLS (XEP-0368) and chat with a WebSocket user;
// raw sockets get the stream errors only the edge can give (a stanza before STARTTLS, malformed
// or oversized XML, no stream in time), each closing that client only.
import assert from "node:assert/strict";
import type { EventEmitter } from "node:events";
import net from "node:net";
import tls from "node:tls";
import { Mesh, metricValue, type EdgeProcess } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { freePort } from "../helpers/redis-server.js";
import { CLIENT_HEADER, RawTcpClient, hasStreamError } from "../helpers/raw-tcp-client.js";
import { makeCert, trustCerts, type TestCert } from "../helpers/tls-cert.js";
import { TestUser, isMessageFrom, loginAs, xml } from "../helpers/xmpp-client.js";

const MAX_STANZA_BYTES = 10000;

/** The parts of @xmpp/client's stream management plugin the test looks at. */
interface StreamManagement extends EventEmitter {
  enabled: boolean;
  id: string;
}
const HANDSHAKE_TIMEOUT_MS = 2000;

describe("e2e: TCP c2s (STARTTLS, direct TLS)", function () {
  this.timeout(30000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  let cert: TestCert;
  let untrust: () => void;
  let c2sPort: number;
  let c2sTlsPort: number;
  let plainPort: number;
  let limitedPort: number;
  let limited: EdgeProcess;
  const users: TestUser[] = [];
  let witness: TestUser;

  before(async function () {
    this.timeout(60000);
    cert = makeCert(["localhost"]);
    untrust = trustCerts([cert.cert]);
    mesh = await Mesh.start({
      shardCount: 4,
      env: {
        MEGAPHONE_MAX_STANZA_BYTES: String(MAX_STANZA_BYTES),
        MEGAPHONE_INBOUND_BURST_BYTES: "100000",
        MEGAPHONE_HANDSHAKE_TIMEOUT_MS: String(HANDSHAKE_TIMEOUT_MS),
      },
    });
    await mesh.session("s1", "");
    c2sPort = await freePort();
    c2sTlsPort = await freePort();
    plainPort = await freePort();
    const relaxed = {
      // Every client here comes from 127.0.0.1.
      MEGAPHONE_UPGRADES_PER_ADDRESS_PER_SECOND: "100000",
      MEGAPHONE_UPGRADE_BURST_PER_ADDRESS: "100000",
      MEGAPHONE_MAX_UNAUTHENTICATED_CONNECTIONS_PER_ADDRESS: "5000",
    };
    edge = await mesh.edge("e1", "", {
      ...relaxed,
      MEGAPHONE_C2S_PORT: String(c2sPort),
      MEGAPHONE_C2S_TLS_PORT: String(c2sTlsPort),
      MEGAPHONE_TLS_CERT: cert.certFile,
      MEGAPHONE_TLS_KEY: cert.keyFile,
    });
    // A development edge: plaintext c2s, no certificate.
    await mesh.edge("e2", "", {
      ...relaxed,
      MEGAPHONE_C2S_PORT: String(plainPort),
      MEGAPHONE_C2S_REQUIRE_TLS: "false",
    });
    // An edge that lets one address hold two connections.
    limitedPort = await freePort();
    limited = await mesh.edge("e3", "", {
      MEGAPHONE_C2S_PORT: String(limitedPort),
      MEGAPHONE_TLS_CERT: cert.certFile,
      MEGAPHONE_TLS_KEY: cert.keyFile,
      MEGAPHONE_MAX_CONNECTIONS_PER_ADDRESS: "2",
    });
    for (const name of ["alice", "bob", "carol", "walter", "mallory"])
      await mesh.addUser(`${name}@localhost`, `${name}-pw`);
    witness = await loginAs(users, edge.url, "walter");
  });

  after(async () => {
    for (const user of users) await user.stop();
    await mesh?.stop();
    untrust?.();
  });

  /** The well-behaved WebSocket user still gets answers. */
  async function othersStillServed(): Promise<void> {
    const pong = await witness.ping();
    assert.equal(pong.attrs.type, "result");
  }

  function tlsOf(user: TestUser): tls.TLSSocket {
    return (user.xmpp.socket as unknown as { socket: tls.TLSSocket }).socket;
  }

  async function chat(tcpUser: TestUser, wsUser: TestUser): Promise<void> {
    await tcpUser.send(
      xml("message", { to: wsUser.jid, type: "chat" }, xml("body", {}, "hi ☺ 😀")),
    );
    await wsUser.waitFor(isMessageFrom(tcpUser.jid, "hi ☺ 😀"), "the TCP user's message");
    await wsUser.send(xml("message", { to: tcpUser.jid, type: "chat" }, xml("body", {}, "hello")));
    await tcpUser.waitFor(isMessageFrom(wsUser.jid, "hello"), "the WebSocket user's reply");
  }

  it("logs an @xmpp/client user in over STARTTLS; it chats with a WebSocket user", async () => {
    const alice = await loginAs(users, `xmpp://localhost:${c2sPort}`, "alice");
    const bob = await loginAs(users, edge.url, "bob");
    const socket = tlsOf(alice);
    assert.equal(socket.encrypted, true);
    assert.equal(socket.authorized, true, "the certificate was verified against its CA");
    await chat(alice, bob);
    const accepted = await metricValue(
      edge.port,
      'megaphone_edge_tcp_accepted_total{mode="starttls"}',
    );
    assert.ok(accepted >= 1, `tcp_accepted_total{mode="starttls"} is ${accepted}`);
  });

  it("logs an @xmpp/client user in over direct TLS (XEP-0368); it chats with a WebSocket user", async () => {
    const carol = await loginAs(users, `xmpps://localhost:${c2sTlsPort}`, "carol");
    const bob = await loginAs(users, edge.url, "bob", { resource: "direct" });
    assert.equal(tlsOf(carol).encrypted, true);
    await chat(carol, bob);
  });

  it("resumes a stream (XEP-0198) dropped over STARTTLS through direct TLS; every message once", async () => {
    const alice = await loginAs(users, edge.url, "alice", { resource: "sm" });
    const bob = await loginAs(users, `xmpp://localhost:${c2sPort}`, "bob", { resource: "sm" });
    const sm = (bob.xmpp as unknown as { streamManagement: StreamManagement }).streamManagement;
    await until(() => sm.enabled, "stream management enabled");
    const id = sm.id;
    const received = () =>
      bob.inbox.filter((el) => el.is("message")).map((el) => el.getChildText("body") ?? "");
    const send = async (from: number, to: number) => {
      for (let i = from; i <= to; i++)
        await alice.send(xml("message", { to: bob.jid, type: "chat" }, xml("body", {}, `m-${i}`)));
    };
    await send(1, 5);
    await until(() => received().length === 5, "m-1..m-5 before the drop");
    const resumed = new Promise<void>((resolve) => sm.once("resumed", () => resolve()));
    (bob.xmpp as unknown as { options: { service: string } }).options.service =
      `xmpps://localhost:${c2sTlsPort}`;
    tlsOf(bob).destroy(); // no </stream:stream>: the session waits to be resumed
    await send(6, 10);
    (bob.xmpp.reconnect as unknown as { start(): void }).start();
    await resumed;
    bob.xmpp.reconnect.stop();
    assert.equal(sm.id, id, "the same session, resumed");
    await until(() => received().length >= 10, "every message", 10000);
    await bob.ping();
    assert.deepEqual(
      received(),
      Array.from({ length: 10 }, (_, i) => `m-${i + 1}`),
    );
  });

  it("negotiates ALPN xmpp-client on the direct TLS port, and refuses other protocols", async () => {
    const raw = await RawTcpClient.connect(c2sTlsPort, cert.cert, ["xmpp-client"]);
    assert.equal(raw.tlsSocket?.alpnProtocol, "xmpp-client");
    raw.send(CLIENT_HEADER);
    await raw.waitText((t) => t.includes("<mechanism>SCRAM-SHA-256</mechanism>"), "SASL features");
    assert.ok(!raw.text.includes("starttls"), "no STARTTLS offered over TLS");
    raw.destroy();
    // RFC 7301 §3.2: a client offering only other protocols is refused in the handshake.
    await assert.rejects(
      RawTcpClient.connect(c2sTlsPort, cert.cert, ["h2"]),
      /no application protocol/,
    );
  });

  it("offers only STARTTLS, required, before TLS; a stanza first gets policy-violation", async () => {
    const raw = await RawTcpClient.connect(c2sPort);
    raw.send(CLIENT_HEADER);
    const features = await raw.waitText((t) => t.includes("</stream:features>"), "features");
    assert.match(features, /<stream:stream [^>]*from="localhost"/);
    assert.match(
      features,
      /<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required\/><\/starttls>/,
    );
    assert.ok(!features.includes("mechanisms"), "no SASL before TLS");
    raw.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>");
    await raw.waitText(hasStreamError("policy-violation"), "policy-violation");
    await raw.waitText((t) => t.endsWith("</stream:stream>"), "the stream's end");
    await raw.waitClosed();
    await othersStillServed();
  });

  async function overTls(): Promise<RawTcpClient> {
    const raw = await RawTcpClient.connect(c2sPort);
    await raw.startTls(cert.cert);
    raw.send(CLIENT_HEADER);
    await raw.waitText((t) => t.includes("<mechanism>SCRAM-SHA-256</mechanism>"), "SASL features");
    return raw;
  }

  const badInput = [
    {
      what: "malformed XML with not-well-formed",
      send: "<message to='a@localhost'><body>x</message>",
      condition: "not-well-formed",
    },
    {
      what: "a comment with restricted-xml (RFC 6120 §11.1)",
      send: "<message><!-- <body>hidden</body> --></message>",
      condition: "restricted-xml",
    },
    {
      // Never finished: the edge must not wait for the end tag to refuse it.
      what: "an element larger than maxStanzaBytes with policy-violation before it ends",
      send: `<message><body>${"x".repeat(MAX_STANZA_BYTES + 100)}`,
      condition: "policy-violation",
    },
  ];
  for (const { what, send, condition } of badInput)
    it(`answers ${what} at the edge and closes that client only`, async () => {
      const raw = await overTls();
      raw.send(send);
      await raw.waitText(hasStreamError(condition), condition);
      await raw.waitClosed();
      await othersStillServed();
    });

  it("closes a connection whose TLS handshake fails, saying nothing (RFC 6120 §5.4.3.2)", async () => {
    const closes = () =>
      metricValue(edge.port, 'megaphone_edge_closes_total{reason="tls-failed"}').then((v) =>
        Number.isNaN(v) ? 0 : v,
      );
    const before = await closes();
    const direct = await RawTcpClient.connect(c2sTlsPort);
    direct.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    await direct.waitClosed();
    const afterProceed = await RawTcpClient.connect(c2sPort);
    afterProceed.send(CLIENT_HEADER);
    await afterProceed.waitText((t) => t.includes("</stream:features>"), "features");
    afterProceed.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await afterProceed.waitText((t) => t.includes("<proceed"), "proceed");
    afterProceed.send("<message>not TLS</message>");
    await afterProceed.waitClosed();
    assert.ok(afterProceed.text.endsWith('<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>'));
    await until(async () => (await closes()) >= before + 2, "two tls-failed closes");
    await othersStillServed();
  });

  it("closes a connection that opens no stream in time (handshake timeout)", async () => {
    const silent = await RawTcpClient.connect(c2sPort);
    // One that stops after the pre-TLS stream counts the same: no stream reached the session.
    const stalled = await RawTcpClient.connect(c2sPort);
    stalled.send(CLIENT_HEADER);
    const started = Date.now();
    for (const raw of [silent, stalled]) {
      await raw.waitText(
        hasStreamError("connection-timeout"),
        "connection-timeout",
        3 * HANDSHAKE_TIMEOUT_MS,
      );
      await raw.waitClosed();
    }
    assert.ok(Date.now() - started >= HANDSHAKE_TIMEOUT_MS - 200);
    // The error is a well-formed stream: a header before it when none was sent yet.
    assert.match(silent.text, /^<\?xml version='1.0'\?><stream:stream /);
  });

  it("answers the client's </stream:stream> with its own and closes", async () => {
    const raw = await overTls();
    raw.send("</stream:stream>");
    await raw.waitText((t) => t.endsWith("</stream:stream>"), "the server's stream end");
    await raw.waitClosed();
  });

  it("refuses a connection past the per-address cap with a stream error, as upgrades get 429", async () => {
    const held = [await RawTcpClient.connect(limitedPort), await RawTcpClient.connect(limitedPort)];
    const third = await RawTcpClient.connect(limitedPort);
    await third.waitText(hasStreamError("policy-violation"), "policy-violation");
    assert.match(third.text, /^<\?xml version='1.0'\?><stream:stream [^>]*from="localhost"/);
    assert.ok(third.text.endsWith("</stream:stream>"), third.text);
    await third.waitClosed();
    const refused = await metricValue(
      limited.port,
      'megaphone_edge_upgrades_refused_total{reason="address-connections"}',
    );
    assert.equal(refused, 1);
    for (const raw of held) raw.destroy();
  });

  it("serves plaintext c2s with no STARTTLS when c2sRequireTls is false", async () => {
    const raw = await RawTcpClient.connect(plainPort);
    raw.send(CLIENT_HEADER);
    const features = await raw.waitText((t) => t.includes("</stream:features>"), "features");
    assert.ok(!features.includes("starttls"));
    assert.ok(features.includes("<mechanism>SCRAM-SHA-256</mechanism>"));
    raw.destroy();
    const mallory = await loginAs(users, `xmpp://localhost:${plainPort}`, "mallory");
    assert.ok(mallory.xmpp.socket instanceof net.Socket);
    assert.ok(!(mallory.xmpp.socket instanceof tls.TLSSocket), "no TLS on this port");
    await chat(mallory, witness);
  });
});
