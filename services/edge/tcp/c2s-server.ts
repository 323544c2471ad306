// The edge's TCP c2s listeners: c2sPort (STARTTLS, or plaintext when c2sRequireTls is false)
// and c2sTlsPort (direct TLS, XEP-0368). Each accepted socket passes the same admission and
// capacity checks as a WebSocket upgrade (edge-server.ts) and then becomes a connection like
// any other (c2s-stream.ts): same registry, limits, sweeper, publisher, outbound and drain.
import net from "node:net";
import type { Config } from "../../shared/config.js";
import { normalizeIp } from "../../shared/ip-list.js";
import type { Logger } from "../../shared/log.js";
import { CANNED_FRAMES, type CannedCloseName } from "../close-reasons.js";
import type { EdgeMetrics } from "../edge-metrics.js";
import { streamHeaderFrame } from "../stream-header.js";
import { addressKey } from "../ws/client-address.js";
import type { UpgradeRefusal } from "../ws/upgrade.js";
import { acceptC2s, type C2sDeps, type C2sMode } from "./c2s-stream.js";
import { frameToStream } from "./stream-framing.js";
import { END_LINGER_MS } from "./tcp-client-socket.js";
import { TlsContexts, type TlsFiles } from "./tls-contexts.js";

/** The settings the listeners read (config.ts documents each). */
export type C2sSettings = Pick<Config, "host" | "c2sPort" | "c2sTlsPort" | "c2sRequireTls"> &
  TlsFiles;

export interface C2sServerDeps extends Omit<C2sDeps, "tls"> {
  /** Why a new connection from `address` must be refused now, if it must (edge-server.ts). */
  capacityRefusal(address: string): UpgradeRefusal | undefined;
  metrics: EdgeMetrics;
  log: Logger;
}

export interface C2sListeners {
  /** The ports actually listened on (undefined: off). */
  c2sPort: number | undefined;
  c2sTlsPort: number | undefined;
  /** Stops accepting at once; open connections are the drain's (edge-server.ts). */
  close(): void;
}

/** The canned close a refused TCP connection gets (a WebSocket one gets an HTTP status). */
const REFUSAL_CLOSES: Record<UpgradeRefusal, CannedCloseName> = {
  "no-xmpp-subprotocol": "invalid-namespace",
  "origin-refused": "address-limit",
  stopping: "stopping",
  overloaded: "overloaded",
  "shards-behind": "overloaded",
  "max-connections": "overloaded",
  "upgrade-rate": "address-limit",
  "address-connections": "address-limit",
  "address-unauthenticated": "address-limit",
  "unauthenticated-connections": "overloaded",
};

/** Starts the c2s listeners config asks for; undefined when it asks for none. */
export async function startC2s(
  settings: C2sSettings,
  deps: C2sServerDeps,
): Promise<C2sListeners | undefined> {
  const plain = settings.c2sPort >= 0;
  const direct = settings.c2sTlsPort >= 0;
  if (!plain && !direct) return undefined;
  const needsTls = direct || settings.c2sRequireTls;
  const tls = needsTls ? new TlsContexts(settings, deps.log) : undefined;
  const c2sDeps: C2sDeps = { ...deps, tls };
  const servers: net.Server[] = [];
  const listenOn = async (port: number, mode: C2sMode): Promise<number> => {
    const server = net.createServer({ noDelay: true }, (socket) => accept(socket, mode));
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, settings.host, () => {
        server.off("error", reject);
        resolve();
      });
    }).catch((err: unknown) => {
      const setting = mode === "direct-tls" ? "MEGAPHONE_C2S_TLS_PORT" : "MEGAPHONE_C2S_PORT";
      throw new Error(`edge cannot listen on ${settings.host}:${port} (${setting}): ${err}`);
    });
    server.on("error", (err) => deps.log.error({ err, mode }, "c2s listener error"));
    return (server.address() as net.AddressInfo).port;
  };
  const accept = (socket: net.Socket, mode: C2sMode): void => {
    // Errors before the connection takes the socket (a reset right away) must not throw.
    socket.on("error", () => undefined);
    const peer = socket.remoteAddress;
    if (peer === undefined) return void socket.destroy();
    const address = addressKey(normalizeIp(peer) ?? peer);
    const refusal = deps.capacityRefusal(address);
    if (refusal) {
      deps.metrics.upgradesRefused.inc({ reason: refusal });
      return refuse(socket, mode, REFUSAL_CLOSES[refusal], settings.domain);
    }
    deps.metrics.tcpAccepted.inc({ mode });
    acceptC2s(socket, mode, address, c2sDeps);
  };
  // server.close() calls back only once every connection has ended: not waited for.
  const close = () => {
    tls?.stop();
    for (const server of servers) if (server.listening) server.close();
  };
  try {
    const c2sPort = plain
      ? await listenOn(settings.c2sPort, settings.c2sRequireTls ? "starttls" : "plain")
      : undefined;
    const c2sTlsPort = direct ? await listenOn(settings.c2sTlsPort, "direct-tls") : undefined;
    deps.log.info({ c2sPort, c2sTlsPort, tlsNames: tls?.names }, "c2s listening");
    return { c2sPort, c2sTlsPort, close };
  } catch (err) {
    close();
    throw err;
  }
}

/**
 * Refuses a connection before it is one: on a plain port, the edge's stream header, the stream
 * error and the stream's end (RFC 6120 §4.9.1.1); on a TLS port nothing can be said before a
 * handshake the edge will not spend, so the socket is just closed.
 */
function refuse(socket: net.Socket, mode: C2sMode, reason: CannedCloseName, domain: string): void {
  if (mode === "direct-tls") return void socket.destroy();
  const frames = [streamHeaderFrame(domain), ...CANNED_FRAMES[reason]];
  socket.end(frames.map(frameToStream).join(""));
  setTimeout(() => socket.destroy(), END_LINGER_MS).unref();
}
