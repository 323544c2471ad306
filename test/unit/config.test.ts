// services/shared/config.ts and config-parse.ts: defaults, MEGAPHONE_* environment variables,
// flags (which win), and start-up errors that name the setting to fix (STYLE.md §15).
import { strict as assert } from "node:assert";
import { DEFAULTS, SETTINGS } from "../../services/shared/config.js";
import {
  ConfigError,
  envName,
  flagName,
  helpText,
  parseArgs,
  parseShardRanges,
  threadPoolSize,
} from "../../services/shared/config-parse.js";

/** Asserts that `fn` throws a ConfigError whose message holds every one of `names`. */
function failsNaming(fn: () => unknown, ...names: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
    for (const name of names)
      assert.ok(err.message.includes(name), `"${err.message}" should name ${name}`);
    return true;
  });
}

describe("config", () => {
  it("has the documented defaults", () => {
    const { config, positional, switches } = parseArgs([], {});
    assert.deepEqual(config, DEFAULTS);
    assert.equal(config.domain, "localhost");
    assert.equal(config.redis, "");
    assert.equal(config.port, 5280);
    assert.equal(config.shardCount, 64);
    assert.equal(config.shards, "");
    assert.equal(config.maxStanzaBytes, 256 * 1024);
    assert.equal(config.allowPlain, true);
    assert.equal(config.plainQueueMaxLogins, 1024);
    assert.equal(config.plainRequiresTls, true);
    assert.equal(config.tlsTerminatedByProxy, false);
    assert.equal(config.maxAuthFailures, 3);
    assert.equal(config.offlineMaxMessages, 500);
    assert.equal(config.claimIdleMs, 30000);
    assert.equal(config.edgeInboxTtlMs, 60000);
    assert.equal(config.drainDelayMs, 3000);
    assert.equal(config.drainWindowMs, 10000);
    assert.deepEqual(config.user, []);
    assert.deepEqual(positional, []);
    assert.deepEqual([...switches], []);
  });

  it("derives names: --kebab-case flags and MEGAPHONE_UPPER_SNAKE variables", () => {
    assert.equal(flagName("shardCount"), "--shard-count");
    assert.equal(envName("shardCount"), "MEGAPHONE_SHARD_COUNT");
    assert.equal(envName("maxStanzaBytes"), "MEGAPHONE_MAX_STANZA_BYTES");
    assert.equal(envName("redis"), "MEGAPHONE_REDIS");
  });

  it("reads MEGAPHONE_* variables, parsing each by kind", () => {
    const { config } = parseArgs([], {
      MEGAPHONE_SHARD_COUNT: "16",
      MEGAPHONE_DOMAIN: "chat.example",
      MEGAPHONE_ALLOW_PLAIN: "no",
      MEGAPHONE_MAX_STANZA_BYTES: " 20000 ",
      MEGAPHONE_USER: "a@x:1, b@x:2",
      MEGAPHONE_UNRELATED: "ignored",
    });
    assert.equal(config.shardCount, 16);
    assert.equal(config.domain, "chat.example");
    assert.equal(config.allowPlain, false);
    assert.equal(config.maxStanzaBytes, 20000);
    assert.deepEqual(config.user, ["a@x:1", "b@x:2"]);
  });

  it("lets a flag beat the environment, in both flag forms", () => {
    const env = { MEGAPHONE_SHARD_COUNT: "16", MEGAPHONE_DOMAIN: "env.example" };
    const { config } = parseArgs(["--shard-count", "32", "--domain=flag.example"], env);
    assert.equal(config.shardCount, 32);
    assert.equal(config.domain, "flag.example");
  });

  it("reads a bare boolean flag as true and keeps positional arguments in order", () => {
    const { config, positional, switches } = parseArgs(
      ["user", "--allow-plain", "--max-auth-failures", "5", "add", "bob@x", "--help"],
      { MEGAPHONE_ALLOW_PLAIN: "false" },
    );
    assert.equal(config.allowPlain, true);
    assert.equal(config.maxAuthFailures, 5);
    assert.deepEqual(positional, ["user", "add", "bob@x"]);
    assert.deepEqual([...switches], ["help"]);
  });

  it("collects a repeated --user and lets it replace MEGAPHONE_USER", () => {
    const { config } = parseArgs(["--user", "alice:a", "--user=bob@localhost:b"], {
      MEGAPHONE_USER: "carol:c",
    });
    assert.deepEqual(config.user, ["alice:a", "bob@localhost:b"]);
  });

  describe("errors name the setting", () => {
    it("refuses a non-integer", () => {
      failsNaming(
        () => parseArgs([], { MEGAPHONE_SHARD_COUNT: "sixteen" }),
        "MEGAPHONE_SHARD_COUNT",
      );
      failsNaming(() => parseArgs(["--shard-count", "1.5"], {}), "--shard-count");
      failsNaming(() => parseArgs(["--port="], {}), "--port");
    });

    it("refuses a value below the floor or above the ceiling", () => {
      failsNaming(
        () => parseArgs([], { MEGAPHONE_MAX_STANZA_BYTES: "9999" }),
        "MEGAPHONE_MAX_STANZA_BYTES",
        "10000",
      );
      failsNaming(
        () => parseArgs(["--max-stanza-bytes", "100"], {}),
        "--max-stanza-bytes",
        "10000",
      );
      failsNaming(() => parseArgs(["--shard-count", "0"], {}), "--shard-count");
      failsNaming(() => parseArgs(["--port", "65536"], {}), "--port", "65535");
    });

    it("refuses a shard count that is not a power of two, naming flag and variable", () => {
      failsNaming(
        () => parseArgs([], { MEGAPHONE_SHARD_COUNT: "3" }),
        "--shard-count",
        "MEGAPHONE_SHARD_COUNT",
        "power of two",
      );
      failsNaming(() => parseArgs(["--shard-count", "48"], {}), "MEGAPHONE_SHARD_COUNT");
    });

    it("refuses an unknown flag, and a flag without its value", () => {
      failsNaming(() => parseArgs(["--shard-cnt", "4"], {}), "--shard-cnt");
      failsNaming(() => parseArgs(["--demo=yes"], {}), "--demo");
      failsNaming(() => parseArgs(["--domain"], {}), "--domain");
    });

    it("refuses a bad boolean", () => {
      failsNaming(() => parseArgs([], { MEGAPHONE_ALLOW_PLAIN: "maybe" }), "MEGAPHONE_ALLOW_PLAIN");
    });

    it("refuses a bad shard range, naming --shards and MEGAPHONE_SHARDS", () => {
      for (const shards of ["0-64", "7-3", "x", "1,,2", "-1"])
        failsNaming(() => parseArgs(["--shards", shards], {}), "--shards", "MEGAPHONE_SHARDS");
      failsNaming(
        () => parseArgs([], { MEGAPHONE_SHARDS: "0-15", MEGAPHONE_SHARD_COUNT: "8" }),
        "MEGAPHONE_SHARDS",
        "MEGAPHONE_SHARD_COUNT",
      );
    });

    it("refuses an inbound burst smaller than the largest stanza", () => {
      failsNaming(
        () => parseArgs(["--max-stanza-bytes", "2000000"], {}),
        "MEGAPHONE_INBOUND_BURST_BYTES",
        "MEGAPHONE_MAX_STANZA_BYTES",
      );
    });

    it("refuses an edge inbox TTL below twice the edge heartbeat TTL (the inbox must outlive detection)", () => {
      failsNaming(
        () => parseArgs(["--edge-heartbeat-ttl-ms", "40000"], {}),
        "MEGAPHONE_EDGE_INBOX_TTL_MS",
        "MEGAPHONE_EDGE_HEARTBEAT_TTL_MS",
      );
      failsNaming(
        () => parseArgs([], { MEGAPHONE_EDGE_INBOX_TTL_MS: "7999" }),
        "MEGAPHONE_EDGE_INBOX_TTL_MS",
        "MEGAPHONE_EDGE_HEARTBEAT_TTL_MS",
      );
      const { config } = parseArgs(["--edge-inbox-ttl-ms", "8000"], {});
      assert.equal(config.edgeInboxTtlMs, 8000);
    });

    it("c2s is off by default; a TLS c2s port needs a certificate, plaintext c2s does not", () => {
      const { config } = parseArgs([], {});
      assert.equal(config.c2sPort, -1);
      assert.equal(config.c2sTlsPort, -1);
      assert.equal(config.c2sRequireTls, true);
      failsNaming(
        () => parseArgs(["--c2s-port", "5222"], {}),
        "MEGAPHONE_C2S_PORT",
        "MEGAPHONE_TLS_CERT",
      );
      failsNaming(
        () => parseArgs([], { MEGAPHONE_C2S_TLS_PORT: "5223" }),
        "MEGAPHONE_C2S_TLS_PORT",
      );
      failsNaming(
        () => parseArgs(["--tls-cert", "/c.pem"], {}),
        "MEGAPHONE_TLS_CERT",
        "MEGAPHONE_TLS_KEY",
      );
      const plain = parseArgs(["--c2s-port", "5222", "--c2s-require-tls", "false"], {});
      assert.equal(plain.config.c2sRequireTls, false);
      const tls = parseArgs(
        ["--c2s-port", "5222", "--c2s-tls-port", "5223", "--tls-cert-dir", "/certs"],
        {},
      );
      assert.deepEqual([tls.config.c2sPort, tls.config.c2sTlsPort], [5222, 5223]);
    });

    it("refuses an edge drain (delay + window) that does not fit in the shutdown grace", () => {
      failsNaming(
        () => parseArgs(["--shutdown-grace-ms", "12999"], {}),
        "MEGAPHONE_DRAIN_DELAY_MS",
        "MEGAPHONE_DRAIN_WINDOW_MS",
        "MEGAPHONE_SHUTDOWN_GRACE_MS",
      );
      failsNaming(
        () => parseArgs([], { MEGAPHONE_DRAIN_WINDOW_MS: "17001" }),
        "MEGAPHONE_DRAIN_WINDOW_MS",
        "MEGAPHONE_SHUTDOWN_GRACE_MS",
      );
      const { config } = parseArgs(["--shutdown-grace-ms", "13000"], {});
      assert.equal(config.drainDelayMs + config.drainWindowMs, config.shutdownGraceMs);
      const none = parseArgs([], {
        MEGAPHONE_SHUTDOWN_GRACE_MS: "0",
        MEGAPHONE_DRAIN_DELAY_MS: "0",
        MEGAPHONE_DRAIN_WINDOW_MS: "0",
      });
      assert.equal(none.config.shutdownGraceMs, 0);
    });

    it("refuses a domain that is no valid JID domainpart, naming --domain and MEGAPHONE_DOMAIN", () => {
      for (const domain of [
        "",
        "exa mple.com",
        "a..b",
        "user@example.com",
        "example.com:5222",
        "x/y",
        "a\u0007b",
      ])
        failsNaming(() => parseArgs(["--domain", domain], {}), "--domain", "MEGAPHONE_DOMAIN");
      failsNaming(() => parseArgs([], { MEGAPHONE_DOMAIN: "." }), "MEGAPHONE_DOMAIN");
    });

    it("refuses an edge id outside [a-z0-9-] and an unknown log level", () => {
      failsNaming(() => parseArgs(["--id", "Edge_1"], {}), "--id", "MEGAPHONE_ID");
      failsNaming(() => parseArgs([], { MEGAPHONE_LOG_LEVEL: "loud" }), "MEGAPHONE_LOG_LEVEL");
    });
  });

  it("normalises the domain like a JID domainpart: lowercase, NFC, no trailing dot", () => {
    assert.equal(parseArgs(["--domain", "Example.COM"], {}).config.domain, "example.com");
    assert.equal(
      parseArgs([], { MEGAPHONE_DOMAIN: "Chat.Example." }).config.domain,
      "chat.example",
    );
    assert.equal(
      parseArgs(["--domain", "cafe\u0301.example"], {}).config.domain,
      "caf\u00e9.example",
    );
    assert.equal(parseArgs(["--domain", "[::1]"], {}).config.domain, "[::1]");
  });

  it("parses shard ranges into a sorted set of shards", () => {
    assert.deepEqual(parseShardRanges("", 4), [0, 1, 2, 3]);
    assert.deepEqual(parseShardRanges("12, 0-3,2", 16), [0, 1, 2, 3, 12]);
    assert.deepEqual(
      parseArgs(["--shards", "4-7"], { MEGAPHONE_SHARD_COUNT: "8" }).config.shards,
      "4-7",
    );
  });

  it("sizes work for libuv's thread pool as libuv reads UV_THREADPOOL_SIZE", () => {
    assert.equal(threadPoolSize({}), 4);
    assert.equal(threadPoolSize({ UV_THREADPOOL_SIZE: "16" }), 16);
    assert.equal(threadPoolSize({ UV_THREADPOOL_SIZE: "0" }), 1);
    assert.equal(threadPoolSize({ UV_THREADPOOL_SIZE: "many" }), 1);
    assert.equal(threadPoolSize({ UV_THREADPOOL_SIZE: "5000" }), 1024);
  });

  it("lists every setting in helpText, with its flag and MEGAPHONE_* variable", () => {
    const help = helpText();
    const keys = Object.keys(SETTINGS);
    assert.ok(keys.length > 20);
    for (const key of keys) {
      const line = help.split("\n").find((l) => l.includes(` ${envName(key)} `));
      assert.ok(line, `helpText lists ${envName(key)}`);
      assert.ok(line.includes(flagName(key)), `${envName(key)}'s line shows ${flagName(key)}`);
    }
    assert.equal(help.match(/MEGAPHONE_[A-Z_]+/g)?.length, keys.length);
    assert.ok(help.includes("MEGAPHONE_SHARD_COUNT"));
    assert.match(help, /--shard-count\s+MEGAPHONE_SHARD_COUNT\s+.*\[default: 64\]/);
  });
});
