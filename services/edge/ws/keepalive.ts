// RFC 6120 §4.6.1 whitespace keepalives. RFC 7395 §3.3 makes every message one complete element
// and tells clients to keep the connection alive with WebSocket pings instead, but some clients
// still send bare whitespace. Spotting them is a transport concern, not XMPP parsing: the check
// looks at bytes only, never at markup, and the edge stays blind to what stanzas say.
// Such frames count as activity (idle timeout) and pay their token cost, but they are dropped
// here: publishing them would spend a stream entry and a session wake-up on nothing.

/** XML white space (XML 1.0 production S): space, tab, carriage return, line feed. */
const XML_WHITESPACE_BYTES = new Set([0x20, 0x09, 0x0d, 0x0a]);

/**
 * True if `message` holds nothing but XML white space (an empty message too). Stops at the
 * first other byte, which for a stanza is its first one (`<`), so it costs nothing per stanza.
 */
export function isWhitespaceKeepalive(message: ArrayBuffer): boolean {
  const bytes = new Uint8Array(message);
  for (let i = 0; i < bytes.length; i++) if (!XML_WHITESPACE_BYTES.has(bytes[i])) return false;
  return true;
}
