// RFC 6120 §4.9.1.1: a stream error that occurs before the server has sent its stream header
// must be preceded by one, so the client can parse the error as part of a stream. Over
// WebSockets the header is RFC 7395 §3.4's <open/>. The session tier writes the real header;
// the edge writes this one only when it ends a socket with a canned stream error before any
// frame from the session has reached that socket (end-connection.ts).
import { randomId } from "../shared/random-id.js";
import { NS_FRAMING } from "../shared/ns.js";

/** RFC 6120 §4.7.3: a stream id must be unpredictable; 128 bits of randomness. */
const STREAM_ID_BYTES = 16;

/** The RFC 7395 `<open/>` for `domain` (config.domain), with a fresh random stream id. */
export function streamHeaderFrame(domain: string): string {
  const id = randomId(STREAM_ID_BYTES, "hex");
  return (
    `<open xmlns="${NS_FRAMING}" from="${escapeAttribute(domain)}" id="${id}"` +
    ` version="1.0" xml:lang="en"/>`
  );
}

/** config.domain is not validated as a domain name, so it is escaped like any attribute value. */
function escapeAttribute(value: string): string {
  return value
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}
