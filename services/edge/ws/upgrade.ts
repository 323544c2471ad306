// RFC 7395 §3.1 opening handshake. The request's headers are copied out of `req` first (it is
// only valid until the handler returns or awaits), onAborted is registered, and the answer is
// written corked (uWS examples/UpgradeAsync.js). Refusals are plain HTTP answers from a table.
// The client's address (client-address.ts) is worked out here and kept with the socket.
import type { HttpRequest, HttpResponse, us_socket_context_t } from "uWebSockets.js";
import type { IpList } from "../../shared/ip-list.js";
import type { Logger } from "../../shared/log.js";
import type { EdgeMetrics } from "../edge-metrics.js";
import { HTTP_STATUS, type HttpStatus } from "../http/status.js";
import type { AdmissionRefusal } from "./admission.js";
import { addressKey, clientAddress } from "./client-address.js";
import type { SocketData } from "./connection.js";

/** RFC 7395 §3.1: the WebSocket subprotocol token for XMPP (case-sensitive). */
export const XMPP_SUBPROTOCOL = "xmpp";

export const UPGRADE_REFUSALS = {
  /** No `xmpp` in Sec-WebSocket-Protocol. */
  "no-xmpp-subprotocol": {
    status: HTTP_STATUS.BAD_REQUEST,
    body: "the xmpp WebSocket subprotocol is required (RFC 7395)",
  },
  /** Origin present and not in allowedOrigins. */
  "origin-refused": { status: HTTP_STATUS.FORBIDDEN, body: "origin not allowed" },
  /** The edge is stopping (after SIGTERM). */
  stopping: { status: HTTP_STATUS.SERVICE_UNAVAILABLE, body: "server shutting down" },
  /** maxInflightPublishes reached: the edge takes no new work until its publishes drain. */
  overloaded: { status: HTTP_STATUS.SERVICE_UNAVAILABLE, body: "server overloaded, retry" },
  /**
   * Every shard the edge assigns to is past maxInboxLagEntries (shard-lag.ts): a new connection
   * could only add frames the edge must hold.
   */
  "shards-behind": { status: HTTP_STATUS.SERVICE_UNAVAILABLE, body: "server overloaded, retry" },
  /** maxConnections sockets are open. */
  "max-connections": { status: HTTP_STATUS.SERVICE_UNAVAILABLE, body: "server full, retry" },
  /** The address's upgrade bucket is empty (upgradesPerAddressPerSecond, upgradeBurstPerAddress). */
  "upgrade-rate": {
    status: HTTP_STATUS.TOO_MANY_REQUESTS,
    body: "too many connection attempts from your address, retry later",
  },
  /** maxConnectionsPerAddress sockets from the address are open. */
  "address-connections": {
    status: HTTP_STATUS.TOO_MANY_REQUESTS,
    body: "too many connections from your address",
  },
  /** maxUnauthenticatedConnectionsPerAddress sockets from the address have not logged in yet. */
  "address-unauthenticated": {
    status: HTTP_STATUS.TOO_MANY_REQUESTS,
    body: "too many connections logging in from your address, retry later",
  },
  /** maxUnauthenticatedConnections sockets on this edge have not logged in yet. */
  "unauthenticated-connections": {
    status: HTTP_STATUS.SERVICE_UNAVAILABLE,
    body: "server busy with logins, retry",
  },
} as const satisfies Record<string, { status: HttpStatus; body: string }> &
  Record<AdmissionRefusal, unknown>;

export type UpgradeRefusal = keyof typeof UPGRADE_REFUSALS;

export interface UpgradeDeps {
  /** Lower-cased allowed origins; empty allows any. */
  allowedOrigins: ReadonlySet<string>;
  /** Proxies whose X-Forwarded-For is believed (config.trustedProxies). */
  trustedProxies: IpList;
  /**
   * Why the edge cannot take a socket from `address` (its key, client-address.ts) right now
   * (stopping, overloaded, full, per-address limits), if it cannot.
   */
  capacityRefusal(address: string): UpgradeRefusal | undefined;
  metrics: EdgeMetrics;
  log: Logger;
}

interface UpgradeHeaders {
  key: string;
  protocol: string;
  extensions: string;
  origin: string;
  forwardedFor: string;
}

/** Parses config.allowedOrigins ("https://a.example, https://b.example"). */
export function parseAllowedOrigins(spec: string): ReadonlySet<string> {
  return new Set(
    spec
      .split(",")
      .map((origin) => normalizeOrigin(origin))
      .filter((origin) => origin !== ""),
  );
}

function normalizeOrigin(origin: string): string {
  return origin.trim().toLowerCase().replace(/\/+$/, "");
}

/** Sec-WebSocket-Protocol is a comma-separated list of tokens (RFC 6455 §11.3.4). */
export function offersXmpp(header: string): boolean {
  return header.split(",").some((token) => token.trim() === XMPP_SUBPROTOCOL);
}

/**
 * Browsers always send Origin; other clients usually do not and could forge it anyway, so the
 * allow-list (a defence against cross-site WebSocket hijacking) applies when Origin is present.
 */
function refusalFor(
  headers: UpgradeHeaders,
  address: string,
  deps: UpgradeDeps,
): UpgradeRefusal | undefined {
  if (!offersXmpp(headers.protocol)) return "no-xmpp-subprotocol";
  if (
    deps.allowedOrigins.size > 0 &&
    headers.origin !== "" &&
    !deps.allowedOrigins.has(normalizeOrigin(headers.origin))
  )
    return "origin-refused";
  return deps.capacityRefusal(address);
}

export function handleUpgrade(
  res: HttpResponse,
  req: HttpRequest,
  context: us_socket_context_t,
  deps: UpgradeDeps,
): void {
  const headers: UpgradeHeaders = {
    key: req.getHeader("sec-websocket-key"),
    protocol: req.getHeader("sec-websocket-protocol"),
    extensions: req.getHeader("sec-websocket-extensions"),
    origin: req.getHeader("origin"),
    forwardedFor: req.getHeader("x-forwarded-for"),
  };
  const peer = Buffer.from(res.getRemoteAddressAsText()).toString("latin1");
  const address = addressKey(clientAddress(peer, headers.forwardedFor, deps.trustedProxies));
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });

  const refusal = refusalFor(headers, address, deps);
  // The checks are synchronous today; if one ever awaits, the client may have gone meanwhile.
  if (aborted) return;
  res.cork(() => {
    if (refusal === undefined) {
      const data: SocketData = { conn: undefined, address };
      res.upgrade(data, headers.key, XMPP_SUBPROTOCOL, headers.extensions, context);
      return;
    }
    deps.metrics.upgradesRefused.inc({ reason: refusal });
    deps.log.debug({ refusal, origin: headers.origin, address }, "upgrade refused");
    const { status, body } = UPGRADE_REFUSALS[refusal];
    res.writeStatus(status).writeHeader("Content-Type", "text/plain; charset=utf-8").end(body);
  });
}
