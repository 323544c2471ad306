// services/shared/redis/cluster-url.ts: the redis+cluster:// URL that selects Redis Cluster,
// and the start-up error naming MEGAPHONE_REDIS when it is malformed.
import { strict as assert } from "node:assert";
import { ConfigError, parseArgs } from "../../services/shared/config-parse.js";
import { parseClusterUrl } from "../../services/shared/redis/cluster-url.js";

describe("redis+cluster:// URL", () => {
  it("is not a cluster URL for redis:// and rediss://", () => {
    assert.equal(parseClusterUrl("redis://127.0.0.1:6379/0"), undefined);
    assert.equal(parseClusterUrl("rediss://cache:6380"), undefined);
    assert.equal(parseClusterUrl(""), undefined);
  });

  it("lists every seed, with IPv6 brackets removed", () => {
    assert.deepEqual(
      parseClusterUrl("redis+cluster://10.0.0.1:7000,redis-1.redis:7001,[::1]:7002/"),
      {
        seeds: [
          { host: "10.0.0.1", port: 7000 },
          { host: "redis-1.redis", port: 7001 },
          { host: "::1", port: 7002 },
        ],
        username: undefined,
        password: undefined,
      },
    );
  });

  it("takes credentials (percent-decoded) for every node", () => {
    const url = parseClusterUrl("redis+cluster://app:p%40ss@a:7000,b:7000");
    assert.equal(url?.username, "app");
    assert.equal(url?.password, "p@ss");
    assert.equal(url?.seeds.length, 2);
    assert.equal(parseClusterUrl("redis+cluster://:secret@a:7000")?.password, "secret");
    assert.equal(parseClusterUrl("redis+cluster://:secret@a:7000")?.username, undefined);
  });

  it("refuses a seed without a port, with a bad port, or an empty list", () => {
    for (const bad of [
      "redis+cluster://a",
      "redis+cluster://a:0",
      "redis+cluster://a:70000",
      "redis+cluster://a:7000,",
      "redis+cluster://",
      "redis+cluster://a:7000/0",
    ])
      assert.throws(() => parseClusterUrl(bad), /bad Redis Cluster seed/, bad);
  });

  it("fails start-up naming MEGAPHONE_REDIS when the URL is malformed", () => {
    assert.throws(
      () => parseArgs([], { MEGAPHONE_REDIS: "redis+cluster://nohost" }),
      (err: unknown) => err instanceof ConfigError && /MEGAPHONE_REDIS|--redis/.test(err.message),
    );
    assert.equal(
      parseArgs([], { MEGAPHONE_REDIS: "redis+cluster://a:7000,b:7001" }).config.redis,
      "redis+cluster://a:7000,b:7001",
    );
  });
});
