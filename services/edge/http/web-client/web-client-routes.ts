// The web client on the edge's HTTP port (config.webClient): converse.js from its npm package,
// pinned, set up for this server (converse-page.ts):
//   GET /                          the page;
//   GET /web-client.js             converse's settings for this server;
//   GET /converse/<version>/<file> converse's dist files (static-files.ts), cached for good
//                                  (the version is in the path, so an upgrade changes every URL).
// Every answer carries the Content-Security-Policy and nosniff.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { HttpResponse, TemplatedApp } from "uWebSockets.js";
import type { Logger } from "../../../shared/log.js";
import { HTTP_STATUS, type HttpStatus } from "../status.js";
import {
  CONFIG_MODULE_PATH,
  converseConfigModule,
  conversePageHtml,
  WEB_CLIENT_CSP,
} from "./converse-page.js";
import { StaticFiles, type StaticFile } from "./static-files.js";

export interface WebClientOptions {
  domain: string;
  websocketPath: string;
  /**
   * The edge's BOSH endpoint (XEP-0206) when it serves one: converse's bosh_service_url, which
   * it uses where a WebSocket cannot be opened (a proxy that drops upgrades).
   */
  boshPath?: string;
  maxCachedBytes: number;
}

export interface WebClient {
  /** converse.js's version, as its package says. */
  converseVersion: string;
  assetsPath: string;
  files: StaticFiles;
  page: Buffer;
  configModule: Buffer;
}

/** The dist files converse.min.js loads; the unminified builds, maps and website CSS are left. */
const UNSERVED = /^(converse\.js|converse\.css|website(\.min)?\.css)$/;

/** Finds converse.js's dist directory and lists the files it serves (once, at start). */
export async function loadWebClient(options: WebClientOptions): Promise<WebClient> {
  const require = createRequire(import.meta.url);
  const dist = dirname(require.resolve("converse.js/dist/converse.min.js"));
  const pkg = JSON.parse(await readFile(join(dist, "..", "package.json"), "utf8")) as {
    version: string;
  };
  const assetsPath = `/converse/${pkg.version}`;
  const files = await StaticFiles.open({
    root: dist,
    include: (path) => !UNSERVED.test(path),
    maxCachedBytes: options.maxCachedBytes,
  });
  const pageOptions = {
    domain: options.domain,
    websocketPath: options.websocketPath,
    boshPath: options.boshPath,
    assetsPath,
  };
  return {
    converseVersion: pkg.version,
    assetsPath,
    files,
    page: Buffer.from(conversePageHtml(pageOptions)),
    configModule: Buffer.from(converseConfigModule(pageOptions)),
  };
}

const TEXT = "text/plain; charset=utf-8";
const HTML = "text/html; charset=utf-8";
const JAVASCRIPT = "text/javascript; charset=utf-8";
const NOT_FOUND = Buffer.from("not found");
const INTERNAL_ERROR = Buffer.from("internal error");
/** Our two files change with the server's settings: the browser asks again each time. */
const REVALIDATE = "no-cache";
/** converse's files are under a versioned path: they never change at one URL. */
const IMMUTABLE = "public, max-age=31536000, immutable";

export function registerWebClientRoutes(app: TemplatedApp, client: WebClient, log: Logger): void {
  const prefix = `${client.assetsPath}/`;
  app.get("/", (res) => send(res, HTTP_STATUS.OK, HTML, REVALIDATE, client.page));
  app.get(CONFIG_MODULE_PATH, (res) =>
    send(res, HTTP_STATUS.OK, JAVASCRIPT, REVALIDATE, client.configModule),
  );
  app.get(`${prefix}*`, (res, req) => {
    // The raw path, not decoded: only a name exactly as listed at start is served, so
    // "../", "%2e%2e/" and the like name nothing. (req is valid only until the first await.)
    const path = req.getUrl().slice(prefix.length);
    if (!client.files.has(path)) return notFound(res);
    const acceptsGzip = /\bgzip\b/i.test(req.getHeader("accept-encoding"));
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    client.files.get(path, acceptsGzip).then(
      (file) => {
        if (aborted) return;
        res.cork(() => (file ? sendFile(res, file) : notFound(res)));
      },
      (err: unknown) => {
        log.error({ err, path }, "reading a web client file failed");
        if (!aborted)
          res.cork(() =>
            send(res, HTTP_STATUS.INTERNAL_SERVER_ERROR, TEXT, REVALIDATE, INTERNAL_ERROR),
          );
      },
    );
  });
}

function sendFile(res: HttpResponse, file: StaticFile): void {
  res.writeStatus(HTTP_STATUS.OK);
  // Caches keep the gzipped and the plain answer apart.
  res.writeHeader("Vary", "Accept-Encoding");
  if (file.contentEncoding) res.writeHeader("Content-Encoding", file.contentEncoding);
  writeCommonHeaders(res, file.contentType, IMMUTABLE).end(file.body);
}

function notFound(res: HttpResponse): void {
  send(res, HTTP_STATUS.NOT_FOUND, TEXT, REVALIDATE, NOT_FOUND);
}

function send(
  res: HttpResponse,
  status: HttpStatus,
  contentType: string,
  cacheControl: string,
  body: Buffer,
): void {
  writeCommonHeaders(res.writeStatus(status), contentType, cacheControl).end(body);
}

/** The headers of every answer, after its status line. */
function writeCommonHeaders(
  res: HttpResponse,
  contentType: string,
  cacheControl: string,
): HttpResponse {
  return res
    .writeHeader("Content-Type", contentType)
    .writeHeader("Cache-Control", cacheControl)
    .writeHeader("Content-Security-Policy", WEB_CLIENT_CSP)
    .writeHeader("X-Content-Type-Options", "nosniff")
    .writeHeader("Referrer-Policy", "no-referrer");
}
