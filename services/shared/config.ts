// The one typed configuration module. Every setting has a CLI flag (--kebab-case) and an
// environment variable (MEGAPHONE_UPPER_SNAKE); flags win over the environment. Values are
// parsed and validated once at start-up and a bad value names the setting. Nothing else
// in the code base reads process.env.
import { prepareDomain } from "./jid.js";
import { IpList } from "./ip-list.js";

export interface Config {
  /** XMPP domain served (the bare host part of every local JID). */
  domain: string;
  /** Redis URL; absent in all-in-one mode means the in-process bus and stores. */
  redis: string;
  /** Interface the edge (and all-in-one) listens on. */
  host: string;
  /** WebSocket port of the edge; also serves /healthz and /readyz. */
  port: number;
  /** Edge id, part of every connection id; must be unique among live edges. */
  id: string;
  /** Number of virtual shards S, a power of two shared by every process of a deployment. */
  shardCount: number;
  /** Session: the shards it owns; edge: the shards it assigns new connections to. Ranges ("0-7,12"); empty means all. */
  shards: string;
  /** Port of the session's health and metrics endpoint. */
  httpPort: number;
  /** Largest stanza (one WebSocket message) accepted, in bytes (RFC 6120 §13.12 floor 10000). */
  maxStanzaBytes: number;
  /**
   * Tokens every inbound frame costs at least, in bytes: bounds frames per second as well as
   * bytes (a 1-byte frame still costs an XADD, a stream entry and a snapshot write).
   */
  inboundFrameCostBytes: number;
  /** Sustained inbound rate per connection (token bucket refill), in bytes per second. */
  inboundBytesPerSecond: number;
  /** Inbound burst per connection (token bucket size), in bytes. */
  inboundBurstBytes: number;
  /** Most simultaneous client connections on one edge. */
  maxConnections: number;
  /** Most simultaneous connections on one edge from one client address (IPv6: one /64). */
  maxConnectionsPerAddress: number;
  /**
   * Most connections on one edge not yet authenticated: the session has not restarted their
   * stream after SASL, and they are younger than authTimeoutMs (edge/ws/admission.ts).
   */
  maxUnauthenticatedConnections: number;
  /** Most unauthenticated connections on one edge from one client address. */
  maxUnauthenticatedConnectionsPerAddress: number;
  /** WebSocket upgrades one client address may make per second on one edge (token bucket refill). */
  upgradesPerAddressPerSecond: number;
  /** Upgrades one client address may make at once (token bucket size). */
  upgradeBurstPerAddress: number;
  /** Client addresses whose upgrade rate an edge remembers; past it the least recent is forgotten. */
  maxTrackedAddresses: number;
  /**
   * Comma-separated addresses and CIDR blocks of the proxies in front of the edge whose
   * X-Forwarded-For is believed; empty believes none (the TCP peer is the client).
   */
  trustedProxies: string;
  /**
   * Bytes (frame cost, frame-cost.ts) of client frames one edge may hold while its intake is
   * paused, over all connections; a frame past it ends its connection with `overloaded`.
   */
  edgeMaxHeldBytes: number;
  /** A connection that sends nothing for this long is closed by the edge. */
  idleTimeoutMs: number;
  /** A connection that has not sent `<open/>` within this time is closed. */
  handshakeTimeoutMs: number;
  /** A connection that has not bound a resource this long after it opened is closed. */
  authTimeoutMs: number;
  /** Resources one account may bind at once; past it bind gets resource-constraint. */
  maxResourcesPerUser: number;
  /** Largest available presence accepted for broadcast, in bytes (it is stored and fanned out). */
  maxPresenceBytes: number;
  /** Bytes of offline messages kept per user; past it new ones bounce. */
  offlineMaxBytes: number;
  /**
   * Secret the SCRAM stand-in salts of nonexistent users derive from, so a probe cannot tell
   * missing users from real ones. Empty: one key created in the account store (in Redis, for
   * the whole deployment) the first time it is needed. Set it only to pin the key yourself,
   * and then to the same value in every session process.
   * Offline messages one sender (bare JID) may have waiting in another user's queue; past it
   * that sender's new ones bounce, so no one account can fill a queue (messages to oneself
   * count only against offlineMaxMessages).
   */
  offlineMaxMessagesPerSender: number;
  /** Store offline messages only from senders with a subscription in the recipient's roster. */
  offlineFromContactsOnly: boolean;
  /**
   * Secret that makes the SCRAM stand-in salt of a nonexistent user stable across session
   * processes (so a probe cannot tell missing users from real ones); empty = random per process.
   */
  scramStandInKey: string;
  /** Shard inbox entries left pending this long by another consumer are claimed (XAUTOCLAIM). */
  claimIdleMs: number;
  /** Buffered output past which a client that does not read is disconnected. */
  maxBackpressureBytes: number;
  /** Stream entries (XADDs) an edge may have in flight before it pauses reading sockets. */
  maxInflightPublishes: number;
  /**
   * Entries waiting unread in a shard inbox past which the session refuses new streams on that
   * shard with resource-constraint: overload is pushed back to new logins first (DESIGN.md).
   */
  maxInboxLagEntries: number;
  /** Entries read per XREAD/XREADGROUP call. */
  inboxReadCount: number;
  /** How long one blocking read waits for entries, in milliseconds. */
  inboxBlockMs: number;
  /** How often acknowledged entries are trimmed from the streams, in milliseconds. */
  trimIntervalMs: number;
  /**
   * How long an edge's inbox (and the read position it records) outlives the edge's last
   * refresh. Sessions must find it when they recover a dead edge's inbox, so it is at least
   * twice edgeHeartbeatTtlMs; beyond that it only bounds what a vanished edge leaves in Redis.
   */
  edgeInboxTtlMs: number;
  /**
   * A read loop (shard inbox, edge inbox) that has not completed a read for this long, or whose
   * reads fail, makes /readyz answer 503: ready means serving, not merely reaching Redis.
   */
  readinessStaleMs: number;
  /** How often an edge renews its id claim and liveness mark in Redis; also how often sessions check them. */
  edgeHeartbeatIntervalMs: number;
  /**
   * An edge whose heartbeat is this old is dead: sessions end its connections (unavailable
   * presence) and recover what it never delivered. A restarted edge waits up to this long for
   * its predecessor's claim on the id to lapse.
   */
  edgeHeartbeatTtlMs: number;
  /** Time to drain on SIGTERM before exiting; below terminationGracePeriodSeconds. */
  shutdownGraceMs: number;
  /** Offer SASL PLAIN (only sensible behind TLS). */
  allowPlain: boolean;
  /**
   * PLAIN logins waiting for a PBKDF2 derivation (at most the thread pool's size run at once,
   * see threadPoolSize); past it a login gets temporary-auth-failure.
   */
  plainQueueMaxLogins: number;
  /**
   * Offer PLAIN only on connections the server considers secure (RFC 6120 §13.8: PLAIN sends
   * the password itself). Turn off only for tests and local development without TLS.
   */
  plainRequiresTls: boolean;
  /**
   * Clients reach the edges through a proxy that terminates TLS (a Kubernetes ingress, a load
   * balancer with a certificate), so every connection counts as secure. The edge itself
   * speaks plain WebSocket: do not set this unless nothing reaches it without TLS.
   */
  tlsTerminatedByProxy: boolean;
  /** Failed SASL attempts after which a connection is closed. */
  maxAuthFailures: number;
  /** PBKDF2 iterations for SCRAM credentials created by this process. */
  scramIterations: number;
  /** Offline messages kept per user; past it new ones bounce with service-unavailable. */
  offlineMaxMessages: number;
  /** Most items in one roster; also the most pending inbound subscription requests kept per user. */
  rosterMaxItems: number;
  /** Longest roster item name accepted in a roster set, in UTF-8 bytes (RFC 6121 §2.3.3). */
  rosterNameMaxBytes: number;
  /** Longest roster group name accepted in a roster set, in UTF-8 bytes (RFC 6121 §2.3.3). */
  rosterGroupMaxBytes: number;
  /**
   * `megaphone user del` waits this long for the sessions to end the account's live
   * connections (kick not-authorized) before it unbinds what is left itself.
   */
  accountDeleteWaitMs: number;
  /** Directed-presence recipients remembered per connection (RFC 6121 §4.6.2), part of its snapshot. */
  /** Directed-presence recipients remembered per connection (RFC 6121 §4.6.2). */
  directedPresenceMaxRecipients: number;
  /** Bytes of directed-presence recipient JIDs remembered per connection (UTF-8, summed). */
  directedPresenceMaxBytes: number;
  /**
   * Bytes of pending inbound subscription requests (RFC 6121 §3.1.3, stored verbatim) kept
   * per user; a request past it is dropped like one past rosterMaxItems.
   */
  pendingSubscriptionMaxBytes: number;
  /** The session pings a client that has been silent this long (XEP-0199). */
  clientPingIntervalMs: number;
  /** A client that does not answer a server ping within this time is disconnected. */
  clientPingTimeoutMs: number;
  /** Comma-separated Origin allow-list for WebSocket upgrades; empty allows any. */
  allowedOrigins: string;
  /** Log level: fatal, error, warn, info, debug, trace. */
  logLevel: string;
  /** Users created at start in all-in-one mode, as JID:PASSWORD (repeatable). */
  user: string[];
}

type Kind = "string" | "int" | "bool" | "list";

interface Setting {
  kind: Kind;
  default: string | number | boolean | string[];
  /** Lowest accepted value for int settings. */
  min?: number;
  max?: number;
  help: string;
  check?: (value: never) => string | undefined;
  /** The canonical form of a value (after `check`); throws an Error saying why it is invalid. */
  normalize?: (value: never) => unknown;
}

const KIB = 1024;

export const SETTINGS: { [K in keyof Config]: Setting } = {
  domain: {
    kind: "string",
    default: "localhost",
    help: "XMPP domain served (normalised like a JID domainpart: lowercase, no trailing dot)",
    // RFC 7622 §3.2: the served domain is compared with prepared domainparts (stream `to`,
    // every JID), so it must be prepared the same way or "Example.com" would serve no one.
    normalize: (v: string) => prepareDomain(v),
  },
  redis: {
    kind: "string",
    default: "",
    help: "Redis URL (redis://host:port/db); empty = in-process bus and stores",
  },
  host: { kind: "string", default: "0.0.0.0", help: "listen address of the edge" },
  port: { kind: "int", default: 5280, min: 0, max: 65535, help: "WebSocket port of the edge" },
  id: {
    kind: "string",
    default: "",
    help: "edge id ([a-z0-9-], unique among live edges); default: derived from host name and pid",
    check: (v: string) =>
      v === "" || /^[a-z0-9-]{1,40}$/.test(v) ? undefined : "must match [a-z0-9-]{1,40}",
  },
  shardCount: {
    kind: "int",
    default: 64,
    min: 1,
    max: 16384,
    help: "virtual shard count S (power of two, same in every process)",
    check: (v: number) => ((v & (v - 1)) === 0 ? undefined : "must be a power of two"),
  },
  shards: {
    kind: "string",
    default: "",
    help: "session: shards it owns; edge: shards it assigns new connections to; ranges (0-7,12); empty = all",
  },
  httpPort: {
    kind: "int",
    default: 9100,
    min: 0,
    max: 65535,
    help: "session health/metrics port",
  },
  maxStanzaBytes: {
    kind: "int",
    default: 256 * KIB,
    min: 10000,
    max: 16 * KIB * KIB,
    help: "largest stanza accepted, bytes",
  },
  inboundFrameCostBytes: {
    kind: "int",
    default: 1024,
    min: 1,
    help: "tokens each inbound frame costs at least, bytes (bounds frames per second)",
  },
  inboundBytesPerSecond: {
    kind: "int",
    default: 64 * KIB,
    min: 1 * KIB,
    help: "sustained inbound bytes per second per connection",
  },
  inboundBurstBytes: {
    kind: "int",
    default: 512 * KIB,
    min: 10000,
    help: "inbound burst per connection, bytes",
  },
  maxConnections: { kind: "int", default: 10000, min: 1, help: "most connections on one edge" },
  maxConnectionsPerAddress: {
    kind: "int",
    default: 1000,
    min: 1,
    help: "most connections on one edge from one client address (IPv6: per /64)",
  },
  maxUnauthenticatedConnections: {
    kind: "int",
    default: 1000,
    min: 1,
    help: "most connections on one edge not yet past SASL (nor authTimeoutMs old)",
  },
  maxUnauthenticatedConnectionsPerAddress: {
    kind: "int",
    default: 250,
    min: 1,
    help: "most unauthenticated connections on one edge from one client address",
  },
  upgradesPerAddressPerSecond: {
    kind: "int",
    default: 50,
    min: 1,
    help: "WebSocket upgrades per second one client address may sustain on one edge",
  },
  upgradeBurstPerAddress: {
    kind: "int",
    default: 500,
    min: 1,
    help: "WebSocket upgrades one client address may make at once on one edge",
  },
  maxTrackedAddresses: {
    kind: "int",
    default: 100000,
    min: 100,
    help: "client addresses an edge remembers for the upgrade rate (least recent forgotten)",
  },
  trustedProxies: {
    kind: "string",
    default: "",
    help: "comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed; empty = none",
    check: (v: string) => {
      try {
        IpList.parse(v);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
  },
  edgeMaxHeldBytes: {
    kind: "int",
    default: 64 * KIB * KIB,
    min: 1 * KIB * KIB,
    help: "frame cost an edge may hold over all connections while paused, bytes",
  },
  idleTimeoutMs: {
    kind: "int",
    default: 300000,
    min: 1000,
    help: "close a connection silent this long, ms",
  },
  handshakeTimeoutMs: {
    kind: "int",
    default: 10000,
    min: 100,
    help: "close a connection that has not sent <open/> in this time, ms",
  },
  authTimeoutMs: {
    kind: "int",
    default: 30000,
    min: 1000,
    help: "close a connection that has not bound a resource this long after opening, ms",
  },
  maxResourcesPerUser: {
    kind: "int",
    default: 32,
    min: 1,
    help: "resources one account may bind at once",
  },
  maxPresenceBytes: {
    kind: "int",
    default: 16 * KIB,
    min: 1 * KIB,
    help: "largest presence broadcast, bytes (larger gets policy-violation)",
  },
  offlineMaxBytes: {
    kind: "int",
    default: 512 * KIB,
    min: 10000,
    help: "bytes of offline messages kept per user",
  },
  offlineMaxMessagesPerSender: {
    kind: "int",
    default: 100,
    min: 1,
    help: "offline messages one sender may have waiting for one user",
  },
  offlineFromContactsOnly: {
    kind: "bool",
    default: false,
    help: "store offline messages only from roster contacts with a subscription",
  },
  scramStandInKey: {
    kind: "string",
    default: "",
    help: "secret for the SCRAM stand-in salts of unknown users (same in every session); empty = one key kept in the store",
  },
  claimIdleMs: {
    kind: "int",
    default: 30000,
    min: 1000,
    help: "claim shard inbox entries another consumer left pending this long, ms",
  },
  maxBackpressureBytes: {
    kind: "int",
    default: 1024 * KIB,
    min: 64 * KIB,
    help: "disconnect a client whose unread output passes this, bytes",
  },
  maxInflightPublishes: {
    kind: "int",
    default: 2048,
    min: 16,
    help: "XADDs in flight per edge before it pauses its sockets",
  },
  maxInboxLagEntries: {
    kind: "int",
    default: 10000,
    min: 100,
    help: "unread shard inbox entries past which new streams get resource-constraint",
  },
  inboxReadCount: { kind: "int", default: 256, min: 1, max: 10000, help: "entries per read" },
  inboxBlockMs: { kind: "int", default: 1000, min: 10, max: 60000, help: "blocking read, ms" },
  trimIntervalMs: {
    kind: "int",
    default: 5000,
    min: 100,
    help: "how often acknowledged entries are trimmed, ms",
  },
  edgeInboxTtlMs: {
    kind: "int",
    default: 60000,
    min: 1000,
    help: "an edge inbox outlives its edge's last refresh this long (at least 2 x edge heartbeat TTL), ms",
  },
  readinessStaleMs: {
    kind: "int",
    default: 10000,
    min: 500,
    help: "a read loop without a completed read for this long (or failing) makes /readyz 503, ms",
  },
  edgeHeartbeatIntervalMs: {
    kind: "int",
    default: 1000,
    min: 50,
    max: 60000,
    help: "edge heartbeat period; sessions check edge liveness as often, ms",
  },
  edgeHeartbeatTtlMs: {
    kind: "int",
    default: 4000,
    min: 200,
    max: 300000,
    help: "an edge silent this long is dead: its connections end, its inbox is recovered, ms",
  },
  shutdownGraceMs: {
    kind: "int",
    default: 20000,
    min: 0,
    help: "drain time on SIGTERM, ms (below terminationGracePeriodSeconds)",
  },
  allowPlain: { kind: "bool", default: true, help: "offer SASL PLAIN" },
  plainQueueMaxLogins: {
    kind: "int",
    default: 1024,
    min: 0,
    help: "PLAIN logins waiting for a password derivation; past it temporary-auth-failure",
  },
  plainRequiresTls: {
    kind: "bool",
    default: true,
    help: "offer PLAIN only on secure connections (TLS at the edge or --tls-terminated-by-proxy)",
  },
  tlsTerminatedByProxy: {
    kind: "bool",
    default: false,
    help: "clients reach the edges only through a TLS-terminating proxy (e.g. an ingress)",
  },
  maxAuthFailures: {
    kind: "int",
    default: 3,
    min: 1,
    max: 100,
    help: "failed SASL attempts before the connection is closed",
  },
  scramIterations: {
    kind: "int",
    default: 10000,
    min: 4096,
    max: 10000000,
    help: "PBKDF2 iterations for new SCRAM credentials",
  },
  offlineMaxMessages: {
    kind: "int",
    default: 500,
    min: 0,
    help: "offline messages kept per user; past it new ones bounce",
  },
  rosterMaxItems: {
    kind: "int",
    default: 1000,
    min: 1,
    help: "most items per roster, and most pending subscription requests per user",
  },
  rosterNameMaxBytes: {
    kind: "int",
    default: 1024,
    min: 1,
    help: "longest roster item name accepted, UTF-8 bytes",
  },
  rosterGroupMaxBytes: {
    kind: "int",
    default: 1024,
    min: 1,
    help: "longest roster group name accepted, UTF-8 bytes",
  },
  accountDeleteWaitMs: {
    kind: "int",
    default: 5000,
    min: 0,
    help: "user del: wait for sessions to end the account's connections, ms",
  },
  directedPresenceMaxRecipients: {
    kind: "int",
    default: 256,
    min: 1,
    help: "directed-presence recipients remembered per connection",
  },
  directedPresenceMaxBytes: {
    kind: "int",
    default: 32 * KIB,
    min: 4 * KIB,
    help: "bytes of directed-presence recipient JIDs remembered per connection",
  },
  pendingSubscriptionMaxBytes: {
    kind: "int",
    default: 256 * KIB,
    min: 16 * KIB,
    help: "bytes of pending subscription requests kept per user",
  },
  clientPingIntervalMs: {
    kind: "int",
    default: 120000,
    min: 500,
    help: "server pings a client silent this long, ms",
  },
  clientPingTimeoutMs: {
    kind: "int",
    default: 30000,
    min: 100,
    help: "disconnect a client not answering a server ping in this time, ms",
  },
  allowedOrigins: {
    kind: "string",
    default: "",
    help: "comma-separated Origin allow-list for upgrades; empty = any",
  },
  logLevel: {
    kind: "string",
    default: "info",
    help: "fatal, error, warn, info, debug, trace",
    check: (v: string) =>
      ["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(v)
        ? undefined
        : "must be one of fatal, error, warn, info, debug, trace, silent",
  },
  user: { kind: "list", default: [], help: "all-in-one: create user JID:PASSWORD (repeatable)" },
};

export const DEFAULTS: Config = Object.fromEntries(
  Object.entries(SETTINGS).map(([k, s]) => [k, s.default]),
) as unknown as Config;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export function envName(key: string): string {
  return "MEGAPHONE_" + key.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
}

export function flagName(key: string): string {
  return "--" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

function parseValue(key: string, setting: Setting, raw: string, source: string): unknown {
  const where = `${source} (setting ${key})`;
  switch (setting.kind) {
    case "string":
      return raw;
    case "list":
      return raw === "" ? [] : raw.split(/[\s,]+/).filter(Boolean);
    case "bool":
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new ConfigError(`${where}: "${raw}" is not a boolean (true/false)`);
    case "int": {
      if (!/^-?\d+$/.test(raw.trim()))
        throw new ConfigError(`${where}: "${raw}" is not an integer`);
      const n = Number(raw);
      if (setting.min !== undefined && n < setting.min)
        throw new ConfigError(`${where}: ${n} is below the minimum ${setting.min}`);
      if (setting.max !== undefined && n > setting.max)
        throw new ConfigError(`${where}: ${n} is above the maximum ${setting.max}`);
      return n;
    }
  }
}

export interface ParsedArgs {
  config: Config;
  /** Arguments that are not flags, in order (sub-commands, JIDs). */
  positional: string[];
  /** Boolean switches that are not settings (e.g. --help, --demo). */
  switches: Set<string>;
}

/**
 * Reads settings from flags and the environment. `only` limits which settings a
 * sub-command accepts so that a typo or a flag for the other tier is refused.
 */
export function parseArgs(
  argv: string[],
  env: Record<string, string | undefined>,
  knownSwitches: string[] = ["help", "demo"],
  overrides: Partial<Config> = {},
): ParsedArgs {
  const byFlag = new Map<string, keyof Config>();
  for (const key of Object.keys(SETTINGS) as (keyof Config)[]) byFlag.set(flagName(key), key);

  const values: Record<string, unknown> = { ...DEFAULTS, ...overrides };
  for (const key of Object.keys(SETTINGS) as (keyof Config)[]) {
    const raw = env[envName(key)];
    if (raw !== undefined) values[key] = parseValue(key, SETTINGS[key], raw, envName(key));
  }

  const positional: string[] = [];
  const switches = new Set<string>();
  const lists = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const key = byFlag.get(flag);
    if (!key) {
      const name = flag.slice(2);
      if (knownSwitches.includes(name) && eq < 0) {
        switches.add(name);
        continue;
      }
      throw new ConfigError(`unknown option ${flag} (see --help)`);
    }
    const setting = SETTINGS[key];
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (setting.kind === "bool" && (argv[i + 1] === undefined || argv[i + 1].startsWith("--")))
      raw = "true";
    else {
      if (argv[i + 1] === undefined) throw new ConfigError(`${flag} needs a value`);
      raw = argv[++i];
    }
    if (setting.kind === "list") {
      // A repeated flag gives one entry each, verbatim (a password may hold a comma).
      const acc = lists.get(key) ?? [];
      acc.push(raw);
      lists.set(key, acc);
    } else values[key] = parseValue(key, setting, raw, flag);
  }
  for (const [key, list] of lists) values[key] = list;

  for (const key of Object.keys(SETTINGS) as (keyof Config)[]) {
    const check = SETTINGS[key].check as ((v: unknown) => string | undefined) | undefined;
    const problem = check?.(values[key]);
    if (problem) throw new ConfigError(`${flagName(key)} / ${envName(key)}: ${problem}`);
    const normalize = SETTINGS[key].normalize as ((v: unknown) => unknown) | undefined;
    if (normalize) {
      try {
        values[key] = normalize(values[key]);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new ConfigError(
          `${flagName(key)} / ${envName(key)}: "${String(values[key])}" is invalid (${reason})`,
        );
      }
    }
  }
  const config = values as unknown as Config;
  if (config.inboundBurstBytes < config.maxStanzaBytes)
    throw new ConfigError(
      `${envName("inboundBurstBytes")} (${config.inboundBurstBytes}) must be at least ${envName("maxStanzaBytes")} (${config.maxStanzaBytes}), or no maximal stanza could ever pass`,
    );
  if (config.inboundFrameCostBytes > config.inboundBurstBytes)
    throw new ConfigError(
      `${envName("inboundFrameCostBytes")} (${config.inboundFrameCostBytes}) must not exceed ${envName("inboundBurstBytes")} (${config.inboundBurstBytes}), or no frame could ever pass`,
    );
  // A dead edge is noticed edgeHeartbeatTtlMs after its last heartbeat; its inbox must still be
  // there, with as long again left for the recovery, or what it never delivered expires unseen.
  if (config.edgeInboxTtlMs < 2 * config.edgeHeartbeatTtlMs)
    throw new ConfigError(
      `${envName("edgeInboxTtlMs")} (${config.edgeInboxTtlMs}) must be at least twice ${envName("edgeHeartbeatTtlMs")} (${config.edgeHeartbeatTtlMs}), or a dead edge's inbox could expire before it is recovered`,
    );
  parseShardRanges(config.shards, config.shardCount);
  return { config, positional, switches };
}

/** "0-7,12" → [0..7, 12]; empty → every shard. Refuses shards outside [0, shardCount). */
export function parseShardRanges(spec: string, shardCount: number): number[] {
  if (spec.trim() === "") return Array.from({ length: shardCount }, (_, i) => i);
  const shards = new Set<number>();
  for (const part of spec.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new ConfigError(`--shards / MEGAPHONE_SHARDS: "${part}" is not N or N-M`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to >= shardCount)
      throw new ConfigError(
        `--shards / MEGAPHONE_SHARDS: "${part}" is outside 0-${shardCount - 1} (MEGAPHONE_SHARD_COUNT=${shardCount})`,
      );
    for (let s = from; s <= to; s++) shards.add(s);
  }
  return [...shards].sort((a, b) => a - b);
}

/**
 * Threads of libuv's pool, which runs PBKDF2 and other crypto off the event loop: libuv reads
 * UV_THREADPOOL_SIZE itself (default 4, at most 1024). Not a Megaphone setting, but what work
 * bound to the pool is sized from; read here because this module is the one that reads the
 * environment.
 */
export function threadPoolSize(env: Record<string, string | undefined> = process.env): number {
  const raw = env.UV_THREADPOOL_SIZE;
  if (raw === undefined) return 4;
  // As libuv does: atoi, 0 (or no number) becomes 1, anything past 1024 (or negative, being
  // unsigned there) becomes 1024.
  const n = Number.parseInt(raw, 10) || 0;
  if (n === 0) return 1;
  return n < 0 || n > 1024 ? 1024 : n;
}

export function helpText(): string {
  const lines: string[] = [];
  for (const [key, s] of Object.entries(SETTINGS)) {
    const def = Array.isArray(s.default) ? s.default.join(",") : String(s.default);
    lines.push(
      `  ${flagName(key).padEnd(26)} ${envName(key).padEnd(36)} ${s.help}${def !== "" ? ` [default: ${def}]` : ""}`,
    );
  }
  return lines.join("\n");
}
