// The c2s edge's certificates: one pair per domain in MEGAPHONE_TLS_CERT_DIR chosen by SNI on
// both TLS paths (direct TLS and STARTTLS), and a renewed pair picked up without a restart
// (polled every MEGAPHONE_TLS_RELOAD_INTERVAL_MS), while a broken one leaves the old in use.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { Mesh, type EdgeProcess } from "../helpers/cluster.js";
import { until } from "../helpers/poll.js";
import { CLIENT_HEADER, RawTcpClient } from "../helpers/raw-tcp-client.js";
import { freePort } from "../helpers/redis-server.js";
import { makeCert, type TestCert } from "../helpers/tls-cert.js";

const RELOAD_INTERVAL_MS = 200;

/** The fingerprint of the certificate a direct TLS handshake naming `servername` gets (SNI). */
function servedCert(port: number, servername: string, ca: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: "127.0.0.1", servername, ca }, () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? "";
      socket.destroy();
      resolve(fingerprint);
    });
    socket.once("error", reject);
  });
}

const fingerprint = (cert: TestCert) => new X509Certificate(cert.cert).fingerprint256;

describe("e2e: c2s certificates (SNI, reload)", function () {
  this.timeout(30000);
  let mesh: Mesh;
  let edge: EdgeProcess;
  let dir: string;
  let a: TestCert;
  let b: TestCert;
  let c2sPort: number;
  let c2sTlsPort: number;

  before(async function () {
    this.timeout(60000);
    dir = mkdtempSync(join(tmpdir(), "megaphone-certdir-"));
    a = makeCert(["a.example"], dir);
    b = makeCert(["b.example"], dir);
    mesh = await Mesh.start({ shardCount: 4 });
    c2sPort = await freePort();
    c2sTlsPort = await freePort();
    edge = await mesh.edge("e1", "", {
      MEGAPHONE_DOMAIN: "a.example",
      MEGAPHONE_C2S_PORT: String(c2sPort),
      MEGAPHONE_C2S_TLS_PORT: String(c2sTlsPort),
      MEGAPHONE_TLS_CERT_DIR: dir,
      MEGAPHONE_TLS_RELOAD_INTERVAL_MS: String(RELOAD_INTERVAL_MS),
    });
  });

  after(async () => {
    await mesh?.stop();
  });

  it("picks the pair for the SNI name, the served domain's without one", async () => {
    const ca = [a.cert, b.cert];
    assert.equal(await servedCert(c2sTlsPort, "a.example", ca), fingerprint(a));
    assert.equal(await servedCert(c2sTlsPort, "b.example", ca), fingerprint(b));
    assert.equal(await servedCert(c2sTlsPort, "B.Example.", ca), fingerprint(b));
    // Unknown name: the served domain's (MEGAPHONE_DOMAIN) pair; it does not verify for that name.
    await assert.rejects(servedCert(c2sTlsPort, "c.example", ca), /altnames|Hostname/);
  });

  it("picks it by SNI after STARTTLS too", async () => {
    const raw = await RawTcpClient.connect(c2sPort);
    await raw.startTls(
      b.cert,
      "b.example",
      CLIENT_HEADER.replace("to='localhost'", "to='b.example'"),
    );
    assert.equal(raw.tlsSocket?.getPeerX509Certificate()?.fingerprint256, fingerprint(b));
    raw.destroy();
  });

  it("serves a renewed pair without a restart; a broken file keeps the last good one", async () => {
    // A broken renewal: the edge keeps serving b.
    writeFileSync(join(dir, "b.example.key"), "not a key");
    await until(
      () => edge.output().includes("TLS certificate reload failed"),
      "the edge to try the broken pair",
      10 * RELOAD_INTERVAL_MS + 5000,
    );
    const stillB = await servedCert(c2sTlsPort, "b.example", [b.cert]);
    assert.equal(stillB, fingerprint(b));
    // The fixed renewal (a new key and certificate) is picked up by the next poll.
    const renewed = makeCert(["b.example"], mkdtempSync(join(tmpdir(), "megaphone-renew-")));
    writeFileSync(join(dir, "b.example.crt"), renewed.cert);
    writeFileSync(join(dir, "b.example.key"), readFileSync(renewed.keyFile));
    await until(
      async () =>
        (await servedCert(c2sTlsPort, "b.example", [b.cert, renewed.cert])) ===
        fingerprint(renewed),
      "the renewed certificate to be served",
      10 * RELOAD_INTERVAL_MS + 5000,
    );
    assert.equal(await servedCert(c2sTlsPort, "a.example", [a.cert]), fingerprint(a));
  });
});
