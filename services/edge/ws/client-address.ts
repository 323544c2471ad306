// Which client a connection comes from, for the per-address limits (admission.ts). It is the
// TCP peer, unless that peer is a trusted proxy (config.trustedProxies): then it is the
// right-most X-Forwarded-For hop that is not a trusted proxy itself. Every hop left of that one
// was written by the client, so nothing left of it is believed.
import { normalizeIp, type IpList } from "../../shared/ip-list.js";

/** The hextets that name an IPv6 client: one /64 is one subscriber's network (RFC 6177). */
const IPV6_CLIENT_HEXTETS = 4;

/**
 * The client address of a connection from `peer` (as uWS reports it) with the header value
 * `forwardedFor` (empty when absent). uWS reports only the first X-Forwarded-For header; a
 * proxy that appends to an existing header (as nginx and most load balancers do) keeps one.
 */
export function clientAddress(peer: string, forwardedFor: string, trusted: IpList): string {
  let client = normalizeIp(peer) ?? peer;
  if (!trusted.has(client) || forwardedFor === "") return client;
  const hops = forwardedFor.split(",");
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(hops[i]);
    // A hop that is no address was not written by a proxy we trust to write addresses: the
    // nearest trusted hop is then the best we know.
    if (hop === undefined) return client;
    client = hop;
    if (!trusted.has(hop)) return hop;
  }
  return client;
}

/**
 * The key per-address limits count under: the address itself for IPv4, its /64 for IPv6 (a
 * single host is routinely given a whole /64, so per-address limits on full IPv6 addresses
 * would bind nobody).
 */
export function addressKey(address: string): string {
  if (!address.includes(":")) return address;
  const [head, tail = ""] = address.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === "" ? [] : tail.split(":");
  const hextets = address.includes("::")
    ? [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right]
    : left;
  return `${hextets
    .slice(0, IPV6_CLIENT_HEXTETS)
    .map((h) => h.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}
