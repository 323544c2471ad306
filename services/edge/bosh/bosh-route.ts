// XEP-0124 / XEP-0206 on the edge: POST /http-bind (and the CORS preflight). The edge stays
// stateless: it reads a request's body (bounded like a WebSocket message), checks only the
// start tag of its <body/> (body-start-tag.ts), forwards the whole body to the shard of the
// connection its sid names as a `bosh` packet, and holds the HTTP response until the session
// answers it (an edge `bosh` packet, deliverBoshAnswers). A request with no sid creates a
// connection: its id is allocated as for a WebSocket (same shard choice and admission).
import { randomBytes, randomInt } from "node:crypto";
import type { HttpRequest, HttpResponse, TemplatedApp } from "uWebSockets.js";
import type { Bus } from "../../shared/bus/bus.js";
import type { EdgePacket, ShardPacket } from "../../shared/bus/packets.js";
import { makeConnId, parseConnId } from "../../shared/conn-id.js";
import type { IpList } from "../../shared/ip-list.js";
import type { Logger } from "../../shared/log.js";
import { HTTP_STATUS } from "../http/status.js";
import type { ShardLagGate } from "../shard-lag.js";
import { addressKey, clientAddress } from "../ws/client-address.js";
import type { UpgradeRefusal } from "../ws/upgrade.js";
import { UPGRADE_REFUSALS } from "../ws/upgrade.js";
import { NS_HTTPBIND, readBodyStart } from "./body-start-tag.js";
import { HeldRequests, type HeldRequest } from "./held-requests.js";
import { corsHeaders, parseCorsOrigins, type CorsPolicy } from "./cors.js";

export const BOSH_PATH = "/http-bind";

const XML = "text/xml; charset=utf-8";
const TEXT = "text/plain; charset=utf-8";
const BAD_REQUEST_BODY = `<body xmlns="${NS_HTTPBIND}" type="terminate" condition="bad-request"/>`;
/** How much longer than the longest wait the edge holds a request before answering 503. */
export const HOLD_MARGIN_MS = 10000;
/** Serials of BOSH connection ids are random and above any WebSocket serial, so that an edge
 * restarted under the same id (serials from 1 again) cannot name a BOSH session still alive. */
const BOSH_SERIAL_MIN = 2 ** 40;
const BOSH_SERIAL_MAX = 2 ** 47;

export interface BoshRouteDeps {
  bus: Bus;
  /** This incarnation's address: the `e` of every packet, where answers come back. */
  address: string;
  edgeId: string;
  config: {
    shardCount: number;
    maxStanzaBytes: number;
    maxConnections: number;
    boshMaxWaitMs: number;
    boshCorsOrigins: string;
  };
  /** Most bytes of one request body (the WebSocket message bound). */
  maxBodyBytes: number;
  gate: ShardLagGate;
  trustedProxies: IpList;
  capacityRefusal(address: string): UpgradeRefusal | undefined;
  /** Whether the edge is stopping or paused (answers 503 so that the client retries). */
  busy(): boolean;
  log: Logger;
  now(): number;
}

export interface BoshRoute {
  held: HeldRequests;
  /** Writes the session's answers among `batch`; returns the other packets. */
  deliver(batch: readonly EdgePacket[]): EdgePacket[];
  /** Answers every held request 503 (the edge stops): the clients ask another edge. */
  releaseAll(): void;
  stopSweeper(): void;
}

export function registerBoshRoute(app: TemplatedApp, deps: BoshRouteDeps): BoshRoute {
  const held = new HeldRequests();
  const cors = parseCorsOrigins(deps.config.boshCorsOrigins);
  app.options(BOSH_PATH, (res, req) => {
    const headers = corsHeaders(cors, req.getHeader("origin"), true);
    res.cork(() => {
      res.writeStatus(HTTP_STATUS.OK);
      for (const [name, value] of headers) res.writeHeader(name, value);
      res.end();
    });
  });
  app.post(BOSH_PATH, (res, req) => onRequest(res, req, deps, held, cors));
  app.get(BOSH_PATH, (res) => {
    res.cork(() => {
      res
        .writeStatus(HTTP_STATUS.OK)
        .writeHeader("Content-Type", TEXT)
        .end("XMPP over BOSH (XEP-0206): POST a <body/> here");
    });
  });
  const sweep = setInterval(() => {
    const expired = held.takeOlderThan(deps.now() - deps.config.boshMaxWaitMs - HOLD_MARGIN_MS);
    for (const request of expired) answer(request, HTTP_STATUS.SERVICE_UNAVAILABLE, TEXT, "retry");
  }, 1000);
  sweep.unref();
  return {
    held,
    deliver: (batch) => {
      const rest: EdgePacket[] = [];
      for (const packet of batch) {
        if (packet.k !== "bosh") {
          rest.push(packet);
          continue;
        }
        // Not held (any more): its client went away, or asks again elsewhere; the session
        // keeps the answer for that retry.
        const request = held.take(packet.c, packet.r);
        if (request) answer(request, HTTP_STATUS.OK, XML, packet.d);
      }
      return rest;
    },
    releaseAll: () => {
      for (const request of held.takeOlderThan(Infinity))
        answer(request, HTTP_STATUS.SERVICE_UNAVAILABLE, TEXT, "server shutting down, retry");
    },
    stopSweeper: () => clearInterval(sweep),
  };
}

function answer(request: HeldRequest, status: string, contentType: string, body: string): void {
  request.res.cork(() => request.write(status, contentType, body));
}

function onRequest(
  res: HttpResponse,
  req: HttpRequest,
  deps: BoshRouteDeps,
  held: HeldRequests,
  cors: CorsPolicy,
): void {
  // Copied before anything else: `req` is valid only until this handler returns.
  const headers = corsHeaders(cors, req.getHeader("origin"), false);
  const forwardedFor = req.getHeader("x-forwarded-for");
  const peer = Buffer.from(res.getRemoteAddressAsText()).toString("latin1");
  const address = addressKey(clientAddress(peer, forwardedFor, deps.trustedProxies));
  let aborted = false;
  let holding: { connId: string; rid: string; request: HeldRequest } | undefined;
  res.onAborted(() => {
    aborted = true;
    if (holding) held.drop(holding.connId, holding.rid, holding.request);
  });
  const write = (status: string, contentType: string, body: string) => {
    if (aborted) return;
    aborted = true; // answered: nothing more may be written
    res.writeStatus(status).writeHeader("Content-Type", contentType);
    for (const [name, value] of headers) res.writeHeader(name, value);
    res.end(body);
  };
  const refuse = (status: string, contentType: string, body: string) =>
    res.cork(() => write(status, contentType, body));

  const chunks: Buffer[] = [];
  let bytes = 0;
  res.onData((chunk, isLast) => {
    if (aborted) return;
    bytes += chunk.byteLength;
    if (bytes > deps.maxBodyBytes) {
      refuse(HTTP_STATUS.BAD_REQUEST, XML, BAD_REQUEST_BODY);
      return;
    }
    // uWS reuses the chunk's memory after this call: copy it.
    chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
    if (!isLast) return;
    const xml = Buffer.concat(chunks).toString("utf8");
    const start = readBodyStart(xml);
    if (!start) return refuse(HTTP_STATUS.BAD_REQUEST, XML, BAD_REQUEST_BODY);
    let connId = start.connId;
    let secret: string | undefined;
    if (connId === undefined) {
      const refusal = deps.capacityRefusal(address);
      if (refusal) {
        const { status, body } = UPGRADE_REFUSALS[refusal];
        return refuse(status, TEXT, body);
      }
      if (deps.busy()) return refuse(HTTP_STATUS.SERVICE_UNAVAILABLE, TEXT, "retry");
      connId = makeConnId(
        deps.edgeId,
        deps.gate.pick(randomInt),
        randomInt(BOSH_SERIAL_MIN, BOSH_SERIAL_MAX),
      );
      // Drawn here, in the durable entry, so that a creation applied again after a session
      // member's crash gives the client's sid the same secret (bosh-sid.ts).
      secret = randomBytes(18).toString("base64url");
    }
    const { shard } = parseConnId(connId);
    if (shard >= deps.config.shardCount)
      return refuse(HTTP_STATUS.BAD_REQUEST, XML, BAD_REQUEST_BODY);
    if (deps.busy() || !deps.gate.isOpen(shard) || held.size >= deps.config.maxConnections)
      return refuse(HTTP_STATUS.SERVICE_UNAVAILABLE, TEXT, "server busy, retry");
    const request: HeldRequest = { res, atMs: deps.now(), write };
    holding = { connId, rid: start.rid, request };
    const replaced = held.hold(connId, start.rid, request);
    // The client gave up on the earlier copy of this request; it cannot be answered twice.
    if (replaced) answer(replaced, HTTP_STATUS.SERVICE_UNAVAILABLE, TEXT, "superseded");
    const packet: ShardPacket = { k: "bosh", c: connId, e: deps.address, d: xml };
    if (secret !== undefined) packet.s = secret;
    deps.bus.toShard(shard, packet).catch((err: unknown) => {
      deps.log.warn({ err, connId }, "forwarding a BOSH request failed");
      held.drop(connId, start.rid, request);
      if (!aborted) answer(request, HTTP_STATUS.SERVICE_UNAVAILABLE, TEXT, "retry");
    });
  });
}
