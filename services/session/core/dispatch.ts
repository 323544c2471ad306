// The per-frame entry point of the session core: parse one RFC 7395 message, then act on it
// according to the connection's stage (RFC 6120 §4 stream, §6 SASL, §7 binding, §8 stanzas).
// Stream errors close this connection only.
import type { StanzaKind } from "./observer.js";
import type { Element } from "ltx";
import { parseJid } from "../../shared/jid.js";
import { NS_BIND, NS_CLIENT, NS_FRAMING, NS_SASL, NS_SASL2, NS_SM } from "../../shared/ns.js";
import { StreamError, errorReply } from "../../shared/xmpp-errors.js";
import { countInbound, handleSmElement } from "../features/sm/stream-management.js";
import { handleBind } from "./bind.js";
import type { ConnState } from "./connection.js";
import type { SessionContext } from "./context.js";
import { parseFrame } from "./frame-parser.js";
import type { HandlerChain } from "./handler-chain.js";
import { asStanzaError } from "./handler-chain.js";
import { routeIq } from "./route-iq.js";
import { isResponseOrError } from "./stanza-kind.js";
import { handleSasl } from "./sasl/sasl.js";
import { handleSasl2 } from "./sasl/sasl2.js";
import { handleClose, handleOpen } from "./stream.js";

const STANZAS = new Set(["message", "presence", "iq"]);

export async function handleFrame(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  text: string,
): Promise<void> {
  if (conn.stage === "closed") return;
  // Whitespace keepalives (RFC 6120 §4.6.1) carry no element; RFC 7395 clients should use
  // pings instead, but answering them with an error would punish a harmless habit.
  if (text.trim() === "") return;
  try {
    const element = parseFrame(text, ctx.config.maxStanzaBytes);
    await handleElement(ctx, chain, conn, element);
  } catch (err) {
    if (err instanceof StreamError) {
      ctx.log.warn(
        { connId: conn.connId, jid: conn.bareJid, condition: err.condition },
        "stream error",
      );
      ctx.close(conn, err.condition, err.text);
      return;
    }
    throw err;
  }
}

async function handleElement(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  el: Element,
): Promise<void> {
  const ns = el.getNS();
  if (ns === NS_FRAMING) {
    if (el.getName() === "open") return handleOpen(ctx, conn, el);
    if (el.getName() === "close") return handleClose(ctx, conn);
    throw new StreamError("unsupported-stanza-type", `unknown framing element ${el.getName()}`);
  }
  if (el.getName() === "stream" || el.name === "stream:stream")
    throw new StreamError(
      "unsupported-version",
      "use RFC 7395 <open/> framing, not <stream:stream>",
    );

  // XEP-0198 elements are not stanzas and each checks the stage it belongs to.
  if (ns === NS_SM && conn.stage !== "connected" && conn.stage !== "resuming")
    return handleSmElement(ctx, conn, el);

  switch (conn.stage) {
    case "connected":
      throw new StreamError("not-authorized", "open the stream first");
    case "opened":
      if (ns === NS_SASL) return handleSasl(ctx, conn, el);
      if (ns === NS_SASL2) return handleSasl2(ctx, chain, conn, el);
      throw new StreamError("not-authorized", "authenticate first");
    case "authenticated":
      throw new StreamError("not-authorized", "restart the stream after authentication");
    case "restarted":
      if (el.is("iq", NS_CLIENT) && el.getChild("bind", NS_BIND))
        return handleBind(ctx, chain, conn, el);
      throw new StreamError("not-authorized", "bind a resource first");
    case "bound":
      return handleStanza(ctx, chain, conn, el);
    default:
      return;
  }
}

async function handleStanza(
  ctx: SessionContext,
  chain: HandlerChain,
  conn: ConnState,
  stanza: Element,
): Promise<void> {
  if (!STANZAS.has(stanza.getName()))
    throw new StreamError("unsupported-stanza-type", `<${stanza.name}/> is not a stanza`);
  if (stanza.getNS() !== NS_CLIENT)
    throw new StreamError("invalid-namespace", "stanzas are in the jabber:client namespace");
  countInbound(conn);
  ctx.observe.stanza(stanza.getName() as StanzaKind);

  // RFC 6120 §8.1.2.1: the server stamps the full JID; a client's claim is never trusted.
  stanza.attrs.from = `${conn.bareJid}/${conn.resource}`;
  if (stanza.attrs.to !== undefined) {
    try {
      stanza.attrs.to = parseJid(stanza.attrs.to).toString();
    } catch (err) {
      if (isResponseOrError(stanza)) return;
      // The malformed address is not echoed back as our `from`: the server answers.
      delete stanza.attrs.to;
      ctx.send(conn, errorReply(stanza, asStanzaError(ctx, conn, err), ctx.domain));
      return;
    }
  }

  try {
    switch (stanza.getName()) {
      case "iq":
        return await routeIq(ctx, chain, conn, stanza);
      case "message":
        return await chain.handleMessage(ctx, conn, stanza);
      case "presence":
        return await chain.handlePresence(ctx, conn, stanza);
    }
  } catch (err) {
    if (err instanceof StreamError) throw err;
    // Before deciding whether to answer: asStanzaError rethrows store failures (batch retry).
    const error = asStanzaError(ctx, conn, err);
    if (isResponseOrError(stanza)) return;
    ctx.send(conn, errorReply(stanza, error, ctx.domain));
  }
}
