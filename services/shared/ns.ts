// XML namespaces used across the session tier (RFC 6120, RFC 6121, RFC 7395 and the XEPs).
export const NS_CLIENT = "jabber:client";
export const NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
export const NS_STREAMS = "http://etherx.jabber.org/streams";
export const NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams";
export const NS_STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas";
export const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
/** XEP-0440: SASL Channel-Binding Type Capability. */
export const NS_SASL_CB = "urn:xmpp:sasl-cb:0";
export const NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind";
export const NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session";
export const NS_ROSTER = "jabber:iq:roster";
export const NS_ROSTER_VER = "urn:xmpp:features:rosterver";
export const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
export const NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items";
export const NS_PING = "urn:xmpp:ping";
export const NS_SM = "urn:xmpp:sm:3";
export const NS_VERSION = "jabber:iq:version";
export const NS_DELAY = "urn:xmpp:delay";
export const NS_SUB_PREAPPROVAL = "urn:xmpp:features:pre-approval";
/** XEP-0160 feature: the server stores messages for offline users. */
export const NS_MSGOFFLINE = "msgoffline";
/** XEP-0478: stream limits advertisement. */
export const NS_STREAM_LIMITS = "urn:xmpp:stream-limits:0";
/** XEP-0388: Extensible SASL Profile (SASL2). */
export const NS_SASL2 = "urn:xmpp:sasl:2";
/** XEP-0386: Bind 2. */
export const NS_BIND2 = "urn:xmpp:bind:0";
/** XEP-0484: Fast Authentication Streamlining Tokens. */
export const NS_FAST = "urn:xmpp:fast:0";
/** RFC 6120 §5: STARTTLS. */
export const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";
/** XEP-0124: BOSH, the <body/> wrapper. */
export const NS_HTTPBIND = "http://jabber.org/protocol/httpbind";
/** XEP-0206: XMPP over BOSH (xmpp:version, xmpp:restart, xmpp:restartlogic). */
export const NS_XBOSH = "urn:xmpp:xbosh";
