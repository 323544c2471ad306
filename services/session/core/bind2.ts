// XEP-0386 (Bind 2): resource binding inside a SASL2 <authenticate/> (sasl2.ts), answered in
// its <success/>. The resource is "<tag>/<id>" (§3.2.1's recommended form; "<id>" without a
// tag), where the id is stable per client installation: derived from the user and the SASL2
// <user-agent id> (which it does not reveal), so a client that reconnects gets its resource
// back and takes over its own earlier session (§3.2: "SHOULD terminate any earlier sessions
// from the same client"); without a user-agent id it is derived from the connection id, as
// RFC 6120 binding does. Binding itself is bind.ts's, shared with RFC 6120 binding.
// Inline features: XEP-0198 <enable/> (answered with <enabled/> in <bound/>). Carbons
// (XEP-0280) and CSI (XEP-0352) are not implemented by this server, so not offered.
import { createHash } from "node:crypto";
import { Element } from "ltx";
import { parseJid } from "../../shared/jid.js";
import { NS_BIND2, NS_SM } from "../../shared/ns.js";
import { enableSm } from "../features/sm/stream-management.js";
import { bindResource, GENERATED_RESOURCE_HEX } from "./bind.js";
import type { ConnState } from "./connection.js";
import type { SessionContext } from "./context.js";
import type { HandlerChain } from "./handler-chain.js";
import { malformed } from "./sasl/sasl-credentials.js";

/** Longest <tag/> accepted, in UTF-8 bytes: a software name, not a payload. */
export const BIND2_TAG_MAX_BYTES = 64;

/** What a Bind 2 request asks, kept in the connection state across the SASL2 exchange. */
export interface Bind2Request {
  /** The client's <tag/>, "" for none. */
  tag: string;
  /** Inline XEP-0198 <enable/>: whether it asked for resumption. */
  smEnable?: { resume: boolean };
}

/** §3.1: the feature inside SASL2's <inline/>, listing the inline features we take. */
export function bind2Feature(): Element {
  const bind = new Element("bind", { xmlns: NS_BIND2 });
  bind.c("inline").c("feature", { var: NS_SM });
  return bind;
}

/**
 * Reads a <bind xmlns='urn:xmpp:bind:0'/> request. A tag that cannot start a resourcepart
 * (RFC 7622 §3.4) or is longer than BIND2_TAG_MAX_BYTES is a malformed request; children in
 * namespaces we do not offer are ignored, as XEP-0386 lets a server do.
 */
export function parseBind2(bind: Element, domain: string): Bind2Request {
  const tagElement = bind.getChild("tag");
  const tag = tagElement?.getText().trim() ?? "";
  if (tagElement && tagElement.children.some((c) => typeof c !== "string"))
    throw malformed("Bind 2 <tag/> holds text only");
  if (Buffer.byteLength(tag, "utf8") > BIND2_TAG_MAX_BYTES)
    throw malformed(`Bind 2 <tag/> exceeds ${BIND2_TAG_MAX_BYTES} bytes`);
  if (tag !== "") {
    try {
      // The tag starts the resource: it must be valid there (and remain so after preparation).
      if (parseJid(`${domain}/${tag}`).resource !== tag) throw new Error("changed by preparation");
    } catch {
      throw malformed("Bind 2 <tag/> is not a valid resourcepart");
    }
  }
  const enable = bind.getChild("enable", NS_SM);
  const request: Bind2Request = { tag };
  if (enable)
    request.smEnable = { resume: enable.attrs.resume === "true" || enable.attrs.resume === "1" };
  return request;
}

function resourceId(conn: ConnState, tag: string, agentId: string | undefined): string {
  const source =
    agentId === undefined ? `conn\0${conn.connId}` : `agent\0${conn.bareJid}\0${agentId}\0${tag}`;
  return createHash("sha256").update(source).digest("hex").slice(0, GENERATED_RESOURCE_HEX);
}

/**
 * Binds the resource `request` asks for to the authenticated connection (routes, takeover);
 * the connection is not "bound" yet: boundElement() makes it so, in the same step as the
 * caller sends <success/>. Throws StanzaError from binding (resource-constraint).
 */
export async function bind2(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  request: Bind2Request,
  agentId: string | undefined,
): Promise<void> {
  const id = resourceId(conn, request.tag, agentId);
  await bindResource(ctx, chain, conn, request.tag === "" ? id : `${request.tag}/${id}`);
}

/**
 * Marks the connection bound and enables what `request` asked inline; the <bound/> element
 * for the SASL2 <success/>. Synchronous, and the caller sends <success/> right after it: a
 * stanza delivered to a bound connection is written to the client at once (reroute.ts), so
 * nothing may come between the two (as in bind.ts).
 */
export function boundElement(ctx: SessionContext, conn: ConnState, request: Bind2Request): Element {
  conn.stage = "bound";
  const bound = new Element("bound", { xmlns: NS_BIND2 });
  if (request.smEnable) {
    const enable = new Element("enable", { xmlns: NS_SM });
    if (request.smEnable.resume) enable.attrs.resume = "true";
    bound.cnode(enableSm(ctx, conn, enable));
  }
  return bound;
}
