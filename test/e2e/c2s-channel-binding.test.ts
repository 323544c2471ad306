// SCRAM-SHA-256-PLUS (RFC 5802 §6) over TCP c2s through the real mesh (Redis + edge + session
// processes): the edge terminates TLS and hands the session the channel bindings in `open`; a
// raw TLS client computes them from its own side of the TLS connection (tls-exporter, RFC 9266;
// tls-server-end-point, RFC 5929 §4.1) and logs in over STARTTLS and over direct TLS. Debian's
// slixmpp 1.8.3 cannot be the client here: it binds only to tls-unique, which is not defined
// for TLS 1.3 (RFC 9266) and which this server does not offer.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type tls from "node:tls";
import { Mesh } from "../helpers/cluster.js";
import { freePort } from "../helpers/redis-server.js";
import { CLIENT_HEADER, RawTcpClient } from "../helpers/raw-tcp-client.js";
import { ScramSha256Mechanism } from "../helpers/sasl-scram-sha-256.js";
import { makeCert, type TestCert } from "../helpers/tls-cert.js";

const SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const PASSWORD = "alice-pw";

const b64 = (binary: string) => Buffer.from(binary, "latin1").toString("base64");
const unb64 = (text: string) => Buffer.from(text, "base64").toString("latin1");

/** The client's side of the bindings: the same TLS connection, seen from the other end. */
function tlsExporter(socket: tls.TLSSocket): Buffer {
  return socket.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0));
}

/** The test certificate is ECDSA with SHA-256, so its hash is SHA-256 (RFC 5929 §4.1). */
function tlsServerEndPoint(socket: tls.TLSSocket): Buffer {
  return createHash("sha256").update(socket.getPeerCertificate().raw).digest();
}

describe("e2e: SCRAM-SHA-256-PLUS over TCP c2s (channel binding)", function () {
  this.timeout(30000);
  let mesh: Mesh;
  let cert: TestCert;
  let c2sPort: number;
  let c2sTlsPort: number;
  const clients: RawTcpClient[] = [];

  before(async function () {
    this.timeout(60000);
    cert = makeCert(["localhost"]);
    mesh = await Mesh.start({ shardCount: 2 });
    await mesh.session("s1", "", { MEGAPHONE_CHANNEL_BINDING: "true" });
    c2sPort = await freePort();
    c2sTlsPort = await freePort();
    await mesh.edge("e1", "", {
      MEGAPHONE_C2S_PORT: String(c2sPort),
      MEGAPHONE_C2S_TLS_PORT: String(c2sTlsPort),
      MEGAPHONE_TLS_CERT: cert.certFile,
      MEGAPHONE_TLS_KEY: cert.keyFile,
    });
    await mesh.addUser("alice@localhost", PASSWORD);
  });

  after(async () => {
    for (const client of clients) client.destroy();
    await mesh?.stop();
  });

  async function startTls(): Promise<RawTcpClient> {
    const raw = await RawTcpClient.connect(c2sPort);
    clients.push(raw);
    await raw.startTls(cert.cert);
    return raw;
  }

  async function directTls(options: tls.ConnectionOptions = {}): Promise<RawTcpClient> {
    const raw = await RawTcpClient.connect(c2sTlsPort, cert.cert, ["xmpp-client"], options);
    clients.push(raw);
    return raw;
  }

  /** Opens a stream over TLS; returns its features. */
  async function open(raw: RawTcpClient): Promise<string> {
    raw.text = "";
    raw.send(CLIENT_HEADER);
    return raw.waitText((t) => t.includes("</stream:features>"), "stream features");
  }

  function bindingTypes(features: string): string[] {
    const feature =
      /<sasl-channel-binding xmlns="urn:xmpp:sasl-cb:0">(.*?)<\/sasl-channel-binding>/.exec(
        features,
      );
    return [...(feature?.[1] ?? "").matchAll(/type="([^"]+)"/g)].map((m) => m[1] as string);
  }

  /** One SCRAM exchange by RFC 6120 SASL; returns the <success/> or <failure/> received. */
  async function authenticate(
    raw: RawTcpClient,
    mechanism: string,
    client: ScramSha256Mechanism,
  ): Promise<string> {
    const cred = { username: "alice", password: PASSWORD };
    raw.text = "";
    raw.send(`<auth xmlns="${SASL}" mechanism="${mechanism}">${b64(client.response(cred))}</auth>`);
    const first = await raw.waitText(
      (t) => /<\/challenge>|<\/failure>/.test(t),
      "challenge or failure",
    );
    const challenge = /<challenge [^>]*>([^<]*)<\/challenge>/.exec(first)?.[1];
    if (challenge === undefined) return first;
    client.challenge(unb64(challenge));
    raw.text = "";
    raw.send(`<response xmlns="${SASL}">${b64(client.response(cred))}</response>`);
    return raw.waitText((t) => /<\/success>|<\/failure>/.test(t), "success or failure");
  }

  /** A PLUS login, checked to the end: server signature, restart, a bound resource. */
  async function loginPlus(raw: RawTcpClient, type: string, cbData: Buffer): Promise<void> {
    const client = new ScramSha256Mechanism({ cbindFlag: `p=${type}`, cbData });
    const success = await authenticate(raw, "SCRAM-SHA-256-PLUS", client);
    const serverFinal = /<success [^>]*>([^<]*)<\/success>/.exec(success)?.[1];
    assert.ok(serverFinal !== undefined, `no success: ${success}`);
    assert.ok(client.verifyServerFinal(unb64(serverFinal)), "server signature");
    const features = await open(raw);
    assert.ok(features.includes("urn:ietf:params:xml:ns:xmpp-bind"), features);
    raw.send(
      `<iq type="set" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind">` +
        `<resource>plus</resource></bind></iq>`,
    );
    const bound = await raw.waitText((t) => t.includes("</jid>"), "bind result");
    assert.match(bound, /<jid>alice@localhost\/plus<\/jid>/);
  }

  it("offers SCRAM-SHA-256-PLUS and both binding types over STARTTLS (TLS 1.3), and logs in with tls-exporter", async () => {
    const raw = await startTls();
    const socket = raw.tlsSocket as tls.TLSSocket;
    assert.equal(socket.getProtocol(), "TLSv1.3");
    const features = await open(raw);
    assert.match(features, /<mechanism>SCRAM-SHA-256-PLUS<\/mechanism>/);
    assert.match(features, /<mechanism>PLAIN<\/mechanism>/, "PLAIN follows the real TLS");
    assert.deepEqual(bindingTypes(features), ["tls-exporter", "tls-server-end-point"]);
    await loginPlus(raw, "tls-exporter", tlsExporter(socket));
  });

  it("logs in with SCRAM-SHA-256-PLUS over direct TLS (XEP-0368) with tls-server-end-point", async () => {
    const raw = await directTls();
    const features = await open(raw);
    assert.deepEqual(bindingTypes(features), ["tls-exporter", "tls-server-end-point"]);
    await loginPlus(raw, "tls-server-end-point", tlsServerEndPoint(raw.tlsSocket as tls.TLSSocket));
  });

  it("offers tls-server-end-point and tls-unique over TLS 1.2 (no tls-exporter), and logs in with each", async () => {
    const raw = await directTls({ maxVersion: "TLSv1.2" });
    const socket = raw.tlsSocket as tls.TLSSocket;
    assert.equal(socket.getProtocol(), "TLSv1.2");
    const features = await open(raw);
    assert.deepEqual(bindingTypes(features), ["tls-server-end-point", "tls-unique"]);
    await loginPlus(raw, "tls-server-end-point", tlsServerEndPoint(socket));
    // RFC 5929 §3: the first Finished of a full handshake, the client's own.
    const unique = await directTls({ maxVersion: "TLSv1.2" });
    const uniqueSocket = unique.tlsSocket as tls.TLSSocket;
    assert.equal(uniqueSocket.isSessionReused(), false);
    await open(unique);
    await loginPlus(unique, "tls-unique", uniqueSocket.getFinished()!);
  });

  it("refuses another connection's tls-unique with not-authorized", async () => {
    const other = await directTls({ maxVersion: "TLSv1.2" });
    const stolen = (other.tlsSocket as tls.TLSSocket).getFinished()!;
    const raw = await directTls({ maxVersion: "TLSv1.2" });
    await open(raw);
    const client = new ScramSha256Mechanism({ cbindFlag: "p=tls-unique", cbData: stolen });
    const result = await authenticate(raw, "SCRAM-SHA-256-PLUS", client);
    assert.match(result, /<failure [^>]*><not-authorized\/>/);
  });

  it("refuses another connection's tls-exporter with not-authorized", async () => {
    const other = await directTls();
    const stolen = tlsExporter(other.tlsSocket as tls.TLSSocket);
    const raw = await directTls();
    await open(raw);
    const client = new ScramSha256Mechanism({ cbindFlag: "p=tls-exporter", cbData: stolen });
    const result = await authenticate(raw, "SCRAM-SHA-256-PLUS", client);
    assert.match(result, /<failure [^>]*><not-authorized\/>/);
  });

  it("refuses the 'y' flag where -PLUS was offered (downgrade, RFC 5802 §6), accepts 'n'", async () => {
    const raw = await startTls();
    await open(raw);
    const downgraded = new ScramSha256Mechanism({ cbindFlag: "y" });
    const result = await authenticate(raw, "SCRAM-SHA-256", downgraded);
    assert.match(result, /<failure [^>]*><not-authorized\/>/);
    const plain = await authenticate(raw, "SCRAM-SHA-256", new ScramSha256Mechanism());
    assert.match(plain, /<success /);
  });
});
