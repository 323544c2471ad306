// The channel-binding data of a TLS connection the edge terminated (RFC 5056), for SCRAM-*-PLUS
// in the session tier (RFC 5802 §6): it travels in the connection's `open` packet, since only
// the edge holds the TLS socket.
//
// tls-exporter (RFC 9266 §2): 32 bytes exported with the label "EXPORTER-Channel-Binding" and
// no context; defined for TLS 1.3 only here (RFC 9266 §3: over TLS 1.2 it is safe only with
// the extended master secret, which node does not let a server check).
// tls-unique (RFC 5929 §3): the first Finished message of the connection's handshake, the
// client's in a full handshake. Over TLS 1.2 only (RFC 9266 §3 leaves it undefined for 1.3),
// and only after a full handshake: a resumed session lets a man in the middle give two
// connections the same value (the triple handshake attack, RFC 7627 §1). It is what clients
// that know no other type bind to (stock slixmpp 1.8.3).
// tls-server-end-point (RFC 5929 §4.1): the hash of the server's certificate, by the hash of
// its signature algorithm, SHA-256 when that is MD5 or SHA-1; none for algorithms without one
// hash (Ed25519, RSASSA-PSS: its hash is a parameter), as the RFC defines none.
import { createHash } from "node:crypto";
import type tls from "node:tls";

export interface ChannelBindings {
  /** tls-exporter, base64. */
  exporter?: string;
  /** tls-server-end-point, base64. */
  endPoint?: string;
  /** tls-unique, base64. */
  unique?: string;
}

const EXPORTER_LABEL = "EXPORTER-Channel-Binding";
const EXPORTER_BYTES = 32;

/** Signature algorithm OIDs (RFC 3279, 4055, 5758) and the hash tls-server-end-point uses. */
const SIGNATURE_HASHES: Record<string, string> = {
  "1.2.840.113549.1.1.4": "sha256", // md5WithRSAEncryption: MD5 -> SHA-256
  "1.2.840.113549.1.1.5": "sha256", // sha1WithRSAEncryption: SHA-1 -> SHA-256
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
  "1.2.840.113549.1.1.14": "sha224",
  "1.2.840.10045.4.1": "sha256", // ecdsa-with-SHA1
  "1.2.840.10045.4.3.1": "sha224",
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.2.840.10040.4.3": "sha256", // dsa-with-sha1
  "2.16.840.1.101.3.4.3.2": "sha256", // dsa-with-sha256
};

/** The bindings of a server-side TLS socket whose handshake completed. */
export function channelBindings(socket: tls.TLSSocket): ChannelBindings {
  const bindings: ChannelBindings = {};
  const protocol = socket.getProtocol();
  if (protocol === "TLSv1.3") {
    bindings.exporter = socket
      .exportKeyingMaterial(EXPORTER_BYTES, EXPORTER_LABEL, Buffer.alloc(0))
      .toString("base64");
  } else if (protocol === "TLSv1.2" && !socket.isSessionReused()) {
    bindings.unique = socket.getPeerFinished()?.toString("base64");
  }
  const cert = socket.getCertificate();
  const raw = cert && "raw" in cert ? cert.raw : undefined;
  const algorithm = raw ? SIGNATURE_HASHES[signatureAlgorithmOid(raw) ?? ""] : undefined;
  if (raw && algorithm) bindings.endPoint = createHash(algorithm).update(raw).digest("base64");
  return bindings;
}

/** A DER element at `at`: where its content starts and ends; undefined if it does not fit. */
function derElement(
  der: Buffer,
  at: number,
): { tag: number; start: number; end: number } | undefined {
  if (at + 2 > der.length) return undefined;
  const tag = der[at] as number;
  let length = der[at + 1] as number;
  let start = at + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 4 || start + octets > der.length) return undefined;
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[start + i] as number);
    start += octets;
  }
  const end = start + length;
  return end <= der.length ? { tag, start, end } : undefined;
}

/**
 * RFC 5280 §4.1: Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm
 * AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, ... }, signatureValue }.
 */
export function signatureAlgorithmOid(der: Buffer): string | undefined {
  const certificate = derElement(der, 0);
  if (certificate?.tag !== 0x30) return undefined;
  const tbs = derElement(der, certificate.start);
  if (tbs?.tag !== 0x30) return undefined;
  const algorithmId = derElement(der, tbs.end);
  if (algorithmId?.tag !== 0x30) return undefined;
  const oid = derElement(der, algorithmId.start);
  if (oid?.tag !== 0x06 || oid.end === oid.start) return undefined;
  const bytes = der.subarray(oid.start, oid.end);
  const first = bytes[0] as number;
  const arcs = [
    Math.min(2, Math.floor(first / 40)),
    first - Math.min(2, Math.floor(first / 40)) * 40,
  ];
  let value = 0;
  for (let i = 1; i < bytes.length; i++) {
    const byte = bytes[i] as number;
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  return arcs.join(".");
}
