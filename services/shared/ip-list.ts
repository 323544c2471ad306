// Lists of IP addresses and CIDR blocks from settings ("10.0.0.0/8, 192.168.1.7, fd00::/8"),
// and the normal form of one address, for the edge's trusted proxies and per-address limits.
import { BlockList, isIP } from "node:net";

export type IpFamily = "ipv4" | "ipv6";

const IPV4_MAPPED_PREFIX = "::ffff:";

/**
 * `text` as a bare address in its usual form: brackets and a port are removed
 * ("[2001:db8::1]:443", "192.0.2.1:5678"), an IPv4-mapped IPv6 address becomes the IPv4 one,
 * and IPv6 is lower-cased. Undefined when it is not an IP address.
 */
export function normalizeIp(text: string): string | undefined {
  let address = text.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) address = bracketed[1];
  else if (/^\d{1,3}(?:\.\d{1,3}){3}:\d+$/.test(address)) address = address.split(":")[0];
  address = address.toLowerCase();
  if (
    address.startsWith(IPV4_MAPPED_PREFIX) &&
    isIP(address.slice(IPV4_MAPPED_PREFIX.length)) === 4
  )
    address = address.slice(IPV4_MAPPED_PREFIX.length);
  return isIP(address) === 0 ? undefined : address;
}

export function ipFamily(address: string): IpFamily {
  return isIP(address) === 4 ? "ipv4" : "ipv6";
}

/** A set of addresses and CIDR blocks, both families. */
export class IpList {
  private readonly blocks = new BlockList();
  private entries = 0;

  /** Parses "a, b/n, …"; throws an Error naming the first entry that is not an address or block. */
  static parse(spec: string): IpList {
    const list = new IpList();
    for (const entry of spec
      .split(",")
      .map((e) => e.trim())
      .filter(Boolean)) {
      const [addressText, prefixText, extra] = entry.split("/");
      const address = normalizeIp(addressText);
      if (address === undefined || extra !== undefined)
        throw new Error(`"${entry}" is not an IP address or CIDR block`);
      const family = ipFamily(address);
      if (prefixText === undefined) list.blocks.addAddress(address, family);
      else {
        const prefix = /^\d+$/.test(prefixText) ? Number(prefixText) : NaN;
        if (!(prefix >= 0 && prefix <= (family === "ipv4" ? 32 : 128)))
          throw new Error(`"${entry}" has an invalid prefix length`);
        list.blocks.addSubnet(address, prefix, family);
      }
      list.entries++;
    }
    return list;
  }

  get size(): number {
    return this.entries;
  }

  /** `address` must be normalised (normalizeIp). */
  has(address: string): boolean {
    return this.entries > 0 && this.blocks.check(address, ipFamily(address));
  }
}
