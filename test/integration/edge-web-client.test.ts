// The web client over HTTP (services/edge/http/web-client/): a real edge on a RedisBus serves
// the page, its settings module and converse.js's files with their content types, cache
// headers and Content-Security-Policy; names outside the listed files (`..`, encoded or not)
// are 404; webClient false leaves `/` 404. StaticFiles keeps at most its byte budget.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { StaticFiles } from "../../services/edge/http/web-client/static-files.js";
import { edgeSuite, HARNESS_DOMAIN, type TestEdge } from "../helpers/edge-harness.js";

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** GET with the path sent exactly as given (fetch and URL would resolve `..` first). */
function rawGet(
  edge: TestEdge,
  path: string,
  headers: Record<string, string> = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port: edge.handle.port, path, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      })
      .on("error", reject);
  });
}

describe("edge web client (converse.js over HTTP)", () => {
  const suite = edgeSuite();

  it("serves the page and its settings module, locked to the domain, with a CSP", async () => {
    const edge = await suite.start();
    const version = edge.handle.webClient?.converseVersion;
    assert.match(version ?? "", /^\d+\.\d+\.\d+$/);
    const page = await rawGet(edge, "/");
    assert.equal(page.status, 200);
    assert.equal(page.headers["content-type"], "text/html; charset=utf-8");
    assert.equal(page.headers["cache-control"], "no-cache");
    assert.equal(page.headers["x-content-type-options"], "nosniff");
    assert.match(String(page.headers["content-security-policy"]), /script-src 'self';/);
    const html = page.body.toString();
    assert.match(html, new RegExp(`href="/converse/${version}/converse.min.css"`));
    assert.match(html, /<script type="module" src="\/web-client.js"><\/script>/);
    assert.doesNotMatch(
      html,
      /<script>|<script type="module">|https?:\/\//,
      "nothing inline or external",
    );

    const settings = await rawGet(edge, "/web-client.js");
    assert.equal(settings.status, 200);
    assert.equal(settings.headers["content-type"], "text/javascript; charset=utf-8");
    const js = settings.body.toString();
    assert.match(js, new RegExp(`import converse from "/converse/${version}/converse.min.js"`));
    assert.match(js, new RegExp(`locked_domain: "${HARNESS_DOMAIN}"`));
    assert.match(js, /websocketOrigin \+ "\/xmpp-websocket"/);
    // ?transport=bosh leaves the WebSocket out (networks that refuse upgrades).
    assert.match(
      js,
      /websocket_url: new URLSearchParams\(location\.search\)\.get\("transport"\) === "bosh"/,
    );
    assert.match(js, /view_mode: "fullscreen"/);
    assert.match(js, /bosh_service_url: location\.origin \+ "\/http-bind"/, "the edge's BOSH");
  });

  it("gives converse no BOSH URL on an edge that does not serve BOSH", async () => {
    const edge = await suite.start({ boshEnabled: false });
    const js = (await rawGet(edge, "/web-client.js")).body.toString();
    assert.match(js, /websocket_url: websocketOrigin \+ "\/xmpp-websocket"/);
    assert.doesNotMatch(js, /bosh_service_url|transport/);
  });

  it("serves converse's files with their content types, cached for good", async () => {
    const edge = await suite.start();
    const base = `/converse/${edge.handle.webClient?.converseVersion}`;
    const expected: [string, string][] = [
      ["converse.min.js", "text/javascript; charset=utf-8"],
      ["converse.min.css", "text/css; charset=utf-8"],
      ["curve25519_compiled.wasm", "application/wasm"],
      ["emoji.json", "application/json"],
      ["images/logo/conversejs-filled.svg", "image/svg+xml"],
      ["webfonts/muli.ttf", "font/ttf"],
      ["sounds/msg_received.ogg", "audio/ogg"],
    ];
    for (const [file, type] of expected) {
      const answer = await rawGet(edge, `${base}/${file}`);
      assert.equal(answer.status, 200, file);
      assert.equal(answer.headers["content-type"], type, file);
      assert.equal(answer.headers["cache-control"], "public, max-age=31536000, immutable", file);
      assert.ok(answer.body.length > 0, file);
    }
    const wasm = await rawGet(edge, `${base}/curve25519_compiled.wasm`);
    assert.deepEqual([...wasm.body.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d], "\\0asm");
  });

  it("gzips text files for clients that accept it, and only for them", async () => {
    const edge = await suite.start();
    const script = `/converse/${edge.handle.webClient?.converseVersion}/converse.min.js`;
    const plain = await rawGet(edge, script);
    assert.equal(plain.headers["content-encoding"], undefined);
    assert.equal(plain.headers.vary, "Accept-Encoding");
    const gzipped = await rawGet(edge, script, { "accept-encoding": "br, gzip, deflate" });
    assert.equal(gzipped.headers["content-encoding"], "gzip");
    assert.equal(gzipped.headers["content-type"], "text/javascript; charset=utf-8");
    assert.ok(gzipped.body.length < plain.body.length / 2, `${gzipped.body.length} bytes`);
    assert.deepEqual(gunzipSync(gzipped.body), plain.body);
    // Already compressed formats go as they are.
    const font = `/converse/${edge.handle.webClient?.converseVersion}/webfonts/muli.ttf`;
    const fontAnswer = await rawGet(edge, font, { "accept-encoding": "gzip" });
    assert.equal(fontAnswer.headers["content-encoding"], undefined);
  });

  it("answers 404 to names outside the listed files: traversal, encoded, maps, other versions", async () => {
    const edge = await suite.start();
    const base = `/converse/${edge.handle.webClient?.converseVersion}`;
    for (const path of [
      "/../package.json",
      "/%2e%2e/package.json",
      `${base}/../../package.json`,
      `${base}/../../../package.json`,
      `${base}/%2e%2e/%2e%2e/package.json`,
      `${base}/%2E%2E%2F%2E%2E%2Fpackage.json`,
      `${base}/..%2f..%2fpackage.json`,
      `${base}/images/..%5c..%5cpackage.json`,
      `${base}//etc/passwd`,
      `${base}/converse.min.js.map`,
      `${base}/converse.js`,
      `${base}/sounds/README`,
      `${base}/`,
      "/converse/0.0.1/converse.min.js",
      "/index.html",
    ]) {
      const answer = await rawGet(edge, path);
      assert.equal(answer.status, 404, path);
      assert.equal(answer.body.toString(), "not found", path);
    }
    // The XMPP endpoint and the probes are still there.
    assert.equal((await rawGet(edge, "/healthz")).status, 200);
  });

  it("serves nothing at / with webClient false", async () => {
    const edge = await suite.start({ webClient: false });
    assert.equal(edge.handle.webClient, undefined);
    for (const path of ["/", "/web-client.js", "/converse/14.0.0/converse.min.js"])
      assert.equal((await rawGet(edge, path)).status, 404, path);
    await edge.roundTrip(await edge.connect());
  });
});

describe("StaticFiles", () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "megaphone-static-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("keeps at most maxCachedBytes, least recently used dropped first", async () => {
    writeFileSync(join(root, "a.js"), "a".repeat(40));
    writeFileSync(join(root, "b.js"), "b".repeat(40));
    writeFileSync(join(root, "big.js"), "c".repeat(100));
    const files = await StaticFiles.open({ root, include: () => true, maxCachedBytes: 60 });
    assert.equal(files.size, 3);
    assert.equal((await files.get("a.js"))?.body.toString(), "a".repeat(40));
    assert.equal(files.cachedBytes, 40);
    // Served from memory: a change on disk is not seen while it is kept.
    writeFileSync(join(root, "a.js"), "A".repeat(40));
    assert.equal((await files.get("a.js"))?.body.toString(), "a".repeat(40));
    await files.get("b.js"); // a.js leaves to make room
    assert.equal(files.cachedBytes, 40);
    assert.equal((await files.get("a.js"))?.body.toString(), "A".repeat(40), "read again");
    // Larger than the whole budget: served, never kept.
    assert.equal((await files.get("big.js"))?.body.length, 100);
    assert.equal(files.cachedBytes, 40);
  });

  it("serves only files listed at open, with a known extension", async () => {
    writeFileSync(join(root, "page.html"), "<p>");
    writeFileSync(join(root, "notes.txt"), "secret");
    writeFileSync(join(root, "skip.css"), "x");
    const files = await StaticFiles.open({
      root,
      include: (path) => path !== "skip.css",
      maxCachedBytes: 1000,
    });
    writeFileSync(join(root, "later.js"), "x");
    assert.equal((await files.get("page.html"))?.contentType, "text/html; charset=utf-8");
    for (const path of ["notes.txt", "skip.css", "later.js", "../page.html", "/page.html"])
      assert.equal(await files.get(path), undefined, path);
  });
});
