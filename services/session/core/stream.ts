// RFC 7395 §3.3 (framing: <open/> and <close/>), RFC 6120 §4.3 (stream negotiation,
// features) and §4.3.3 (restart after SASL). XEP-0478 advertises the stanza size limit.
// XEP-0388 (SASL2) is offered next to RFC 6120 SASL; it needs no restart, and its features
// follow its <success/> (sasl2.ts). XEP-0440 names the channel-binding types -PLUS can use.
import { randomId } from "../../shared/random-id.js";
import { Element } from "ltx";
import {
  NS_BIND,
  NS_FRAMING,
  NS_ROSTER_VER,
  NS_SASL,
  NS_SASL_CB,
  NS_SESSION,
  NS_STREAM_LIMITS,
  NS_STREAMS,
  NS_SUB_PREAPPROVAL,
} from "../../shared/ns.js";
import { prepareDomain } from "../../shared/jid.js";
import { StreamError } from "../../shared/xmpp-errors.js";
import { smFeature } from "../features/sm/stream-management.js";
import { sasl2Feature } from "./sasl/sasl2.js";
import type { ConnState } from "./connection.js";
import type { SessionContext } from "./context.js";

export function openElement(ctx: SessionContext, conn: ConnState): Element {
  return new Element("open", {
    xmlns: NS_FRAMING,
    from: ctx.domain,
    id: conn.streamId,
    version: "1.0",
    "xml:lang": "en",
  });
}

export function closeElement(): Element {
  return new Element("close", { xmlns: NS_FRAMING });
}

/**
 * Whether the server considers the connection confidential: the edge terminated TLS for it
 * (TCP c2s; its `open` said so), or the deployment vouches for all of them (a proxy in front of
 * the plain WebSocket edge terminates TLS).
 */
export function connectionSecure(ctx: SessionContext, conn: ConnState): boolean {
  return conn.tls !== undefined || ctx.config.tlsTerminatedByProxy;
}

/**
 * The channel-binding data (base64) by type (RFC 5056 names) of a TLS connection the edge
 * terminated; empty for any other, which is offered no -PLUS mechanism. A proxy's TLS cannot
 * be bound to: its data is not ours. Empty too unless the operator turned channel binding on
 * (channelBinding): once -PLUS is offered, a client that binds only to types not offered (stock
 * slixmpp 1.8.3 knows only tls-unique, offered on TLS 1.2 only) sends 'y' and must be refused as a
 * downgrade.
 */
export function channelBindings(ctx: SessionContext, conn: ConnState): Record<string, string> {
  const bindings: Record<string, string> = {};
  if (!ctx.config.channelBinding) return bindings;
  if (conn.tls?.exporter) bindings["tls-exporter"] = conn.tls.exporter;
  if (conn.tls?.endPoint) bindings["tls-server-end-point"] = conn.tls.endPoint;
  if (conn.tls?.unique) bindings["tls-unique"] = conn.tls.unique;
  return bindings;
}

/** XEP-0440: the channel-binding types the server supports on this connection. */
function channelBindingFeature(bindings: Record<string, string>): Element | undefined {
  const types = Object.keys(bindings);
  if (types.length === 0) return undefined;
  const feature = new Element("sasl-channel-binding", { xmlns: NS_SASL_CB });
  for (const type of types) feature.c("channel-binding", { type });
  return feature;
}

/**
 * PLAIN sends the password itself, so it is offered only where it cannot be read on the way
 * (RFC 6120 §13.8, RFC 4616 §6), as mature servers do, unless the operator says otherwise.
 */
export function plainOffered(ctx: SessionContext, conn: ConnState): boolean {
  return ctx.config.allowPlain && (!ctx.config.plainRequiresTls || connectionSecure(ctx, conn));
}

/** Strongest first; -PLUS (RFC 5802 §6) where the connection has channel bindings. */
export function offeredMechanisms(ctx: SessionContext, conn: ConnState): string[] {
  const mechanisms = ["SCRAM-SHA-256", "SCRAM-SHA-1"];
  if (Object.keys(channelBindings(ctx, conn)).length > 0)
    mechanisms.unshift("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS");
  if (plainOffered(ctx, conn)) mechanisms.push("PLAIN");
  return mechanisms;
}

/**
 * The features of the stream in its stage: authentication before SASL; binding (and the rest)
 * after it; after Bind 2 (already bound, XEP-0386) only what still applies, so a client does not
 * bind or enable stream management twice.
 */
export function streamFeatures(ctx: SessionContext, conn: ConnState): Element {
  const features = new Element("stream:features", { "xmlns:stream": NS_STREAMS });
  if (conn.stage === "opened") {
    const mechanisms = features.c("mechanisms", { xmlns: NS_SASL });
    for (const name of offeredMechanisms(ctx, conn)) mechanisms.c("mechanism").t(name);
    features.cnode(sasl2Feature(ctx, conn));
    const cb = channelBindingFeature(channelBindings(ctx, conn));
    if (cb) features.cnode(cb);
  } else if (conn.stage === "bound") {
    features.c("ver", { xmlns: NS_ROSTER_VER });
    features.c("sub", { xmlns: NS_SUB_PREAPPROVAL });
    if (!conn.sm) features.cnode(smFeature());
  } else {
    features.c("bind", { xmlns: NS_BIND });
    features.c("session", { xmlns: NS_SESSION }).c("optional");
    features.c("ver", { xmlns: NS_ROSTER_VER });
    features.c("sub", { xmlns: NS_SUB_PREAPPROVAL });
    features.cnode(smFeature());
  }
  const limits = features.c("limits", { xmlns: NS_STREAM_LIMITS });
  limits.c("max-bytes").t(String(ctx.config.maxStanzaBytes));
  limits.c("idle-seconds").t(String(Math.floor(ctx.config.idleTimeoutMs / 1000)));
  return features;
}

/** RFC 6120 §4.7.2: `to` names this server once prepared like a JID domainpart (config.domain is). */
function servesDomain(ctx: SessionContext, to: string): boolean {
  try {
    return prepareDomain(to) === ctx.domain;
  } catch {
    return false;
  }
}

/** Handles the client's <open/>: a new stream, or the restart after SASL. */
export function handleOpen(ctx: SessionContext, conn: ConnState, open: Element): void {
  const restart = conn.stage === "authenticated";
  if (conn.stage !== "connected" && !restart)
    throw new StreamError("policy-violation", "the stream is already open");
  conn.streamId = randomId(12, "base64url");
  // RFC 6120 §4.9.1.1: errors in the stream header are reported after our own header.
  ctx.send(conn, openElement(ctx, conn));
  if (open.attrs.to !== undefined && !servesDomain(ctx, open.attrs.to))
    throw new StreamError("host-unknown", `this server serves ${ctx.domain}`);
  // RFC 6120 §4.7.5: a higher minor version is answered with ours (1.0); no version (0.9)
  // or another major version cannot be served.
  if (!/^1\.\d+$/.test(open.attrs.version ?? ""))
    throw new StreamError("unsupported-version", "version 1.0 only");
  // Overload is pushed back to new logins first: streams already authenticated go on.
  if (!restart && ctx.overloaded(conn.shard))
    throw new StreamError("resource-constraint", "the server is busy; try again later");
  conn.stage = restart ? "restarted" : "opened";
  ctx.send(conn, streamFeatures(ctx, conn));
}

/** The client's <close/> (RFC 7395 §3.6): answered with <close/>, then the socket ends. */
export function handleClose(ctx: SessionContext, conn: ConnState): void {
  ctx.close(conn);
}
