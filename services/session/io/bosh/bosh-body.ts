// XEP-0124 §7 (the <body/> wrapper) and XEP-0206 §3-§5 (XMPP over BOSH): reading a client's
// <body/> and writing the connection manager's. Pure: no state, no I/O.
import type { Element } from "ltx";
import { escapeXML } from "ltx";
import { NS_CLIENT, NS_HTTPBIND, NS_STREAMS, NS_XBOSH } from "../../../shared/ns.js";
import { StreamError } from "../../../shared/xmpp-errors.js";
import { parseFrame } from "../../core/frame-parser.js";

/** XEP-0124 §17 terminal conditions the session sends (a subset of the table there). */
export type BoshCondition =
  "bad-request" | "host-unknown" | "item-not-found" | "policy-violation" | "remote-stream-error";

export class BoshError extends Error {
  constructor(
    readonly condition: BoshCondition,
    text: string,
  ) {
    super(`${condition}: ${text}`);
    this.name = "BoshError";
  }
}

/** What the session needs from one client <body/>. */
export interface BoshRequest {
  rid: number;
  /** Absent: a session creation request (§7.1). */
  sid?: string;
  /** type='terminate' (§13). */
  terminate: boolean;
  /** xmpp:restart='true' (XEP-0206 §5). */
  restart: boolean;
  /** Creation attributes (§7.1): seconds, requests, version, host. */
  wait?: number;
  hold?: number;
  to?: string;
  ver?: string;
  /** §9.1: the highest rid whose response the client has received (all below it too). */
  ack?: number;
  /** Each child as one RFC 7395 frame, namespaced for the core. */
  payloads: string[];
}

/** Largest rid we accept: XEP-0124 §14.1 keeps rids below 2^53 so they stay exact. */
const MAX_RID = 2 ** 53 - 1;

function intAttr(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,16}$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The attribute of `body` named `local` in namespace `ns`, whatever prefix the client chose. */
function nsAttr(body: Element, ns: string, local: string): string | undefined {
  for (const [name, value] of Object.entries(body.attrs)) {
    const colon = name.indexOf(":");
    if (colon <= 0 || name.slice(colon + 1) !== local) continue;
    const prefix = name.slice(0, colon);
    if (prefix !== "xmlns" && body.attrs[`xmlns:${prefix}`] === ns) return String(value);
  }
  return undefined;
}

/** Parses a client's <body/> (strict XML, bounded by `maxBytes`); throws BoshError. */
export function parseBoshBody(xml: string, maxBytes: number): BoshRequest {
  let body: Element;
  try {
    body = parseFrame(xml, maxBytes);
  } catch (err) {
    if (err instanceof StreamError)
      throw new BoshError(
        err.condition === "policy-violation" ? "policy-violation" : "bad-request",
        err.message,
      );
    throw err;
  }
  if (body.name !== "body" || body.attrs.xmlns !== NS_HTTPBIND)
    throw new BoshError("bad-request", "the root must be <body/> in the httpbind namespace");
  const rid = intAttr(body.attrs.rid);
  if (rid === undefined || rid < 1 || rid > MAX_RID)
    throw new BoshError("bad-request", "rid must be a positive integer");
  const request: BoshRequest = {
    rid,
    terminate: body.attrs.type === "terminate",
    restart: nsAttr(body, NS_XBOSH, "restart") === "true",
    payloads: body.getChildElements().map(payloadFrame),
  };
  if (body.attrs.sid !== undefined) request.sid = String(body.attrs.sid);
  const wait = intAttr(body.attrs.wait);
  if (wait !== undefined) request.wait = wait;
  const hold = intAttr(body.attrs.hold);
  if (hold !== undefined) request.hold = hold;
  if (body.attrs.to !== undefined) request.to = String(body.attrs.to);
  if (body.attrs.ver !== undefined) request.ver = String(body.attrs.ver);
  const ack = intAttr(body.attrs.ack);
  if (ack !== undefined) request.ack = ack;
  return request;
}

/**
 * A payload child as a frame the core reads like a WebSocket message: a stanza with no
 * namespace of its own is in jabber:client (XEP-0206 §7), not in the wrapper's.
 */
function payloadFrame(child: Element): string {
  if (child.attrs.xmlns === undefined && !child.name.includes(":")) child.attrs.xmlns = NS_CLIENT;
  child.parent = null;
  return child.toString();
}

/**
 * An attribute of a <body/> start tag read leniently, for answering a body that is not well
 * formed (the edge checked its start tag, so rid is there).
 */
export function startTagAttr(xml: string, name: "rid" | "sid"): string | undefined {
  return new RegExp(`<body\\s[^>]*?\\b${name}\\s*=\\s*["']([^"'<>]{1,200})["']`).exec(xml)?.[1];
}

/** Bytes a <body/> may add around a stanza of maxStanzaBytes (the edge's bound, too). */
export const BODY_WRAPPER_BYTES = 1024;

/** A response <body/> with `attrs` (already chosen) around `payloads` (serialized frames). */
export function responseBody(attrs: Record<string, string>, payloads: readonly string[]): string {
  let open = `<body xmlns="${NS_HTTPBIND}" xmlns:stream="${NS_STREAMS}"`;
  for (const [name, value] of Object.entries(attrs)) open += ` ${name}="${escapeXML(value)}"`;
  if (payloads.length === 0) return `${open}/>`;
  return `${open}>${payloads.join("")}</body>`;
}

/** §13 / XEP-0206 §6: a terminating <body/>, with the <stream:error/> for remote-stream-error. */
export function terminateBody(condition?: BoshCondition, payloads: readonly string[] = []): string {
  const attrs: Record<string, string> = { type: "terminate" };
  if (condition) attrs.condition = condition;
  return responseBody(attrs, payloads);
}

/** The attributes of the session creation response (XEP-0124 §7.2, XEP-0206 §3). */
export function creationAttributes(params: {
  sid: string;
  waitSeconds: number;
  hold: number;
  requests: number;
  inactivitySeconds: number;
  domain: string;
  authid: string;
  ver: string;
}): Record<string, string> {
  return {
    sid: params.sid,
    wait: String(params.waitSeconds),
    hold: String(params.hold),
    requests: String(params.requests),
    // No minimum between polling requests beyond one second: the session answers them anyway.
    polling: "1",
    inactivity: String(params.inactivitySeconds),
    ver: params.ver,
    from: params.domain,
    authid: params.authid,
    "xmlns:xmpp": NS_XBOSH,
    "xmpp:version": "1.0",
    "xmpp:restartlogic": "true",
  };
}

/** The highest BOSH version we speak (XEP-0124 1.11); a client asking for less gets its own. */
export const BOSH_VERSION = "1.11";

export function negotiatedVersion(clientVer: string | undefined): string {
  const m = clientVer && /^(\d+)\.(\d+)$/.exec(clientVer);
  if (!m) return BOSH_VERSION;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major < 1 || (major === 1 && minor < 11) ? `${major}.${minor}` : BOSH_VERSION;
}
