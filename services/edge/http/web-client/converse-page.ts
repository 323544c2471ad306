// The web client's own two files: the page at `/` and the module that starts converse.js with
// this server's settings, the way Prosody's and ejabberd's mod_conversejs do. The settings are
// in a served module, not inline, so the Content-Security-Policy needs no 'unsafe-inline'.
// The endpoints are built in the browser from `location`: the Host (and scheme) the browser
// reached the edge by, so the page works behind any name, proxy or TLS terminator.

export interface ConversePageOptions {
  /** The XMPP domain every login is locked to (config.domain). */
  domain: string;
  /** Where converse.js's dist directory is served, e.g. "/converse/14.0.0". */
  assetsPath: string;
  /** Path of the RFC 7395 endpoint on this edge. */
  websocketPath: string;
  /** Path of the BOSH endpoint (XEP-0206) on this edge; absent: converse gets no BOSH URL. */
  boshPath?: string;
}

/** The module the page loads (its path is fixed: the page names it). */
export const CONFIG_MODULE_PATH = "/web-client.js";

/** The page at `/`: converse's stylesheet and the config module, nothing inline or external. */
export function conversePageHtml(options: ConversePageOptions): string {
  const title = escapeHtml(`${options.domain} chat`);
  const assets = escapeHtml(options.assetsPath);
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${title}</title>
    <link rel="icon" href="${assets}/images/favicon.ico" />
    <link rel="stylesheet" href="${assets}/converse.min.css" />
    <script type="module" src="${CONFIG_MODULE_PATH}"></script>
  </head>
  <body class="converse-fullscreen">
    <noscript>This chat needs JavaScript.</noscript>
  </body>
</html>
`;
}

/** The config module: imports converse.js and initializes it for this server. */
export function converseConfigModule(options: ConversePageOptions): string {
  // JSON.stringify quotes every value for JavaScript; `<` is escaped too, harmlessly.
  const literal = (v: string) => JSON.stringify(v).replace(/</g, "\\u003c");
  const bosh = options.boshPath
    ? `\n  bosh_service_url: location.origin + ${literal(options.boshPath)},`
    : "";
  // With BOSH, the page takes ?transport=bosh: for networks that refuse WebSocket upgrades
  // (some proxies), where converse would otherwise keep retrying the WebSocket.
  const websocket = options.boshPath
    ? `new URLSearchParams(location.search).get("transport") === "bosh"
    ? undefined
    : websocketOrigin + ${literal(options.websocketPath)}`
    : `websocketOrigin + ${literal(options.websocketPath)}`;
  return `// Megaphone's settings for converse.js (services/edge/http/web-client/converse-page.ts).
import converse from ${literal(`${options.assetsPath}/converse.min.js`)};

const websocketOrigin = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;

// The fullscreen login page's footer shows converse's sponsors' logos from conversejs.org: an
// empty element in its place keeps the page free of external resources (converse defines its
// own only where the name is still free).
customElements.define("converse-footer", class extends HTMLElement {});

converse.initialize({
  assets_path: ${literal(options.assetsPath)},
  websocket_url: ${websocket},${bosh}
  discover_connection_methods: false,
  locked_domain: ${literal(options.domain)},
  domain_placeholder: ${literal(options.domain)},
  allow_registration: false,
  // A newcomer's first chat is with someone not yet in the roster: show it rather than drop it.
  allow_non_roster_messaging: true,
  view_mode: "fullscreen",
  auto_reconnect: true,
  // OMEMO (XEP-0384) keeps its keys in PEP (XEP-0163), which this server does not offer.
  blacklisted_plugins: ["converse-omemo", "converse-omemo-views"],
});
`;
}

/**
 * What the page may load: converse's scripts, styles, fonts, sounds and images from this
 * origin, avatars as data:/blob: URLs, and the edge's XMPP endpoints (ws:/wss:, which 'self'
 * does not cover in every browser); no inline script, no eval, no plugin, no framing, no form
 * posts. Inline styles are allowed: converse's components (lit) set style attributes and
 * <style> elements of their own, and a style cannot run code.
 */
export const WEB_CLIENT_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "media-src 'self'",
  "connect-src 'self' ws: wss:",
  "worker-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join("; ");

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
