// Client addresses for the edge's per-address limits: X-Forwarded-For believed only from
// trusted proxies (right-most untrusted hop), IPv6 clients counted per /64.
import assert from "node:assert/strict";
import { addressKey, clientAddress } from "../../services/edge/ws/client-address.js";
import { parseArgs } from "../../services/shared/config-parse.js";
import { IpList, normalizeIp } from "../../services/shared/ip-list.js";

describe("client addresses", () => {
  const trusted = IpList.parse("10.0.0.0/8, 192.0.2.1, fd00::/8");

  it("takes the TCP peer when it is not a trusted proxy, whatever the header says", () => {
    assert.equal(clientAddress("203.0.113.5", "198.51.100.1", trusted), "203.0.113.5");
    assert.equal(clientAddress("203.0.113.5", "", trusted), "203.0.113.5");
  });

  it("takes the right-most hop that is not a trusted proxy", () => {
    for (const [xff, client] of [
      ["198.51.100.1", "198.51.100.1"],
      ["6.6.6.6, 198.51.100.1", "198.51.100.1"],
      ["6.6.6.6, 198.51.100.1, 10.9.9.9", "198.51.100.1"],
      ["10.1.1.1, 10.2.2.2", "10.1.1.1"],
      ["[2001:db8::7]:443", "2001:db8::7"],
      ["198.51.100.1:5678", "198.51.100.1"],
      // A hop that is no address stops the walk at the nearest trusted hop.
      ["198.51.100.1, junk, 10.3.3.3", "10.3.3.3"],
      ["junk", "192.0.2.1"],
    ])
      assert.equal(clientAddress("192.0.2.1", xff, trusted), client, xff);
  });

  it("normalises IPv4-mapped IPv6 peers and trusts proxies by IPv6 block", () => {
    assert.equal(normalizeIp("::ffff:192.0.2.1"), "192.0.2.1");
    assert.equal(clientAddress("::ffff:192.0.2.1", "198.51.100.1", trusted), "198.51.100.1");
    assert.equal(clientAddress("fd12::1", "2001:db8::1", trusted), "2001:db8::1");
  });

  it("keys IPv4 by address and IPv6 by its /64", () => {
    assert.equal(addressKey("198.51.100.1"), "198.51.100.1");
    assert.equal(addressKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:db8:1:2:bbbb:cccc:dddd:eeee"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:db8::1"), "2001:db8:0:0::/64");
    assert.equal(addressKey("::1"), "0:0:0:0::/64");
  });

  it("refuses a trustedProxies entry that is no address or block, naming the setting", () => {
    for (const bad of ["10.0.0.0/33", "proxy.example", "10.0.0.1/8/1", "fd00::/129"])
      assert.throws(
        () => parseArgs([], { MEGAPHONE_TRUSTED_PROXIES: bad }),
        /MEGAPHONE_TRUSTED_PROXIES/,
        bad,
      );
    assert.equal(
      parseArgs([], { MEGAPHONE_TRUSTED_PROXIES: "10.0.0.0/8, ::1" }).config.trustedProxies,
      "10.0.0.0/8, ::1",
    );
  });
});
