// The settings table: every setting Megaphone has, with its type (Config), default, floor,
// ceiling and help line (SETTINGS), and the defaults as a Config (DEFAULTS). Every setting has a
// CLI flag (--kebab-case) and an environment variable (MEGAPHONE_UPPER_SNAKE); config-parse.ts
// reads them (flags win over the environment), checks them once at start-up, names the setting
// in every error, and writes --help from this table.
import { prepareDomain } from "./jid.js";
import { IpList } from "./ip-list.js";
import { parseClusterUrl } from "./redis/cluster-url.js";

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
  /**
   * Edge: a separate port for /metrics (with /healthz and /readyz); 0 serves /metrics on the
   * WebSocket port. Set it when the client port is public (a LoadBalancer), so only the cluster
   * can scrape: the WebSocket port then no longer answers /metrics.
   */
  metricsPort: number;
  /**
   * Edge: TCP c2s port (RFC 6120), STARTTLS required unless c2sRequireTls is false; -1 = off,
   * 0 = any free port.
   */
  c2sPort: number;
  /** Edge: direct TLS c2s port (XEP-0368, ALPN xmpp-client); -1 = off, 0 = any free port. */
  c2sTlsPort: number;
  /**
   * Edge: STARTTLS is required on c2sPort before anything else (RFC 6120 §5.3.1); false makes
   * that port plaintext only, with no STARTTLS offered (tests and development).
   */
  c2sRequireTls: boolean;
  /** Edge: PEM certificate chain for c2s TLS (with tlsKey); the default when SNI finds no pair. */
  tlsCert: string;
  /** Edge: PEM private key of tlsCert. */
  tlsKey: string;
  /** Edge: directory of `<domain>.crt` and `<domain>.key` pairs, chosen by the client's SNI. */
  tlsCertDir: string;
  /** Edge: how often the TLS files are checked for changes (reloaded when changed), ms. */
  tlsReloadIntervalMs: number;
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
   * Offline messages one sender (bare JID) may have waiting in another user's queue; past it
   * that sender's new ones bounce, so no one account can fill a queue (messages to oneself
   * count only against offlineMaxMessages).
   */
  offlineMaxMessagesPerSender: number;
  /** Store offline messages only from senders with a subscription in the recipient's roster. */
  offlineFromContactsOnly: boolean;
  /**
   * Two-hop delivery (docs/capacity.md): a session writes a stanza for another member's
   * connection straight to that connection's edge when it is safe (available, no XEP-0198, not
   * BOSH, nothing of the sender's still in the shard inbox), instead of through the shard
   * inbox. One Redis server only: on Redis Cluster stanzas keep the third hop.
   */
  twoHopDelivery: boolean;
  /**
   * Secret the SCRAM stand-in salts of nonexistent users derive from, so a probe cannot tell
   * missing users from real ones. Empty: one key created in the account store (in Redis, for
   * the whole deployment) the first time it is needed. Set it only to pin the key yourself,
   * and then to the same value in every session process.
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
   * shard with resource-constraint: overload is pushed back to new logins first (DESIGN.md);
   * the edges also stop publishing to that shard and hold its frames (edge/shard-lag.ts).
   */
  maxInboxLagEntries: number;
  /**
   * How often each edge samples the inbox lag and length of every shard it assigns connections
   * to (for its metrics, and to stop publishing to a shard past maxInboxLagEntries).
   */
  shardLagSampleIntervalMs: number;
  /** Entries read per XREAD/XREADGROUP call. */
  inboxReadCount: number;
  /** How long one blocking read waits for entries, in milliseconds. */
  inboxBlockMs: number;
  /**
   * Shard entries a session works on at once: it reads the next batch while earlier ones are
   * in progress and acknowledges each connection's entries as they are done, so one slow
   * connection holds up only its own entries (they count here until done).
   */
  inboxEntriesInFlight: number;
  /**
   * How long the reader waits for the batch it just handed over before reading the next one.
   * Most batches finish sooner, so reads stay large (few XREADGROUP and XACK per stanza); a
   * batch held up by a slow connection lets the next ones start after this long.
   */
  inboxSlowBatchMs: number;
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
  /**
   * How long a session member's lease on a shard outlives its last renewal. After a member dies,
   * its shards wait this long for a new owner; a paused member's late writes are refused by
   * fencing once another took over.
   */
  shardLeaseTtlMs: number;
  /**
   * Where a session member learns the live members that share the shards (rendezvous hashing):
   * "redis" (heartbeats; the default with --redis), "static" (the --members list; the default
   * without Redis, where the one process owns every shard) or "kubernetes".
   */
  membership: string;
  /** The static membership's member ids (session --id of each member); empty = this one alone. */
  members: string[];
  /** kubernetes membership: the namespace of the session Service (the pod's own, from the downward API). */
  kubernetesNamespace: string;
  /** kubernetes membership: the Service whose ready endpoints are the session members. */
  kubernetesSessionService: string;
  /**
   * kubernetes membership: the API server's URL; empty = the pod's ServiceAccount (in-cluster).
   * Set only to run outside a cluster (tests use a local fake API server).
   */
  kubernetesApiUrl: string;
  /** How often an edge renews its id claim and liveness mark in Redis; also how often sessions check them. */
  edgeHeartbeatIntervalMs: number;
  /**
   * An edge whose heartbeat is this old is dead: sessions end its connections (unavailable
   * presence) and recover what it never delivered. A restarted edge waits up to this long for
   * its predecessor's claim on the id to lapse.
   */
  edgeHeartbeatTtlMs: number;
  /**
   * How often a session member renews its membership heartbeat and reads the live member set
   * (the redis Membership backend), ms.
   */
  membershipHeartbeatIntervalMs: number;
  /**
   * A member whose heartbeat is this old has left the live set (kill -9, partition): the others
   * see it gone within this plus one heartbeat interval. Above membershipHeartbeatIntervalMs.
   */
  membershipTtlMs: number;
  /** Time to drain on SIGTERM before exiting; below terminationGracePeriodSeconds. */
  shutdownGraceMs: number;
  /**
   * Edge, on SIGTERM: how long /readyz answers 503 (and upgrades are refused) before the first
   * socket is closed, so that load balancers and Service endpoints stop sending new clients
   * here before the closed ones reconnect. Skipped when no socket is open.
   */
  drainDelayMs: number;
  /**
   * Edge, on SIGTERM: the sockets are closed in slices spread evenly over this window (edge/
   * drain.ts), so a rolling update does not send every client to the other edges at once.
   * drainDelayMs + drainWindowMs must fit in shutdownGraceMs.
   */
  drainWindowMs: number;
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
  /**
   * Edge: serve the converse.js web client at `/` on the WebSocket port, preconfigured for this
   * edge's endpoint and domain (as Prosody's and ejabberd's mod_conversejs); false: `/` is 404.
   */
  webClient: boolean;
  /** Edge: bytes of web client files kept in memory (least recently used dropped past it). */
  webClientCacheBytes: number;
  /** Log level: fatal, error, warn, info, debug, trace. */
  logLevel: string;
  /** Users created at start in all-in-one mode, as JID:PASSWORD (repeatable). */
  user: string[];
  // Stream management (XEP-0198).
  /** How long a session whose transport was lost waits to be resumed (advertised as max), ms. */
  resumptionTimeoutMs: number;
  /** Stanzas sent and not acked by the client kept per session; past it the session ends. */
  smMaxUnackedStanzas: number;
  // FAST (XEP-0484), over SASL2 (XEP-0388).
  /**
   * Lifetime of a FAST token, ms: a client that stays away longer logs in with its password
   * again. A token used when less than half of it is left is rotated (a new one in <success>).
   */
  fastTokenTtlMs: number;
  /**
   * Offer FAST only on connections the server considers secure (XEP-0484 §7: a token is
   * replayable by whoever reads it). Turn off only for tests and local development without TLS.
   */
  fastRequiresTls: boolean;
  /**
   * SCRAM channel binding (RFC 5802 §6, XEP-0440) on TLS connections the edge terminates: -PLUS
   * offered and the 'y' downgrade refused. Off by default, since clients that bind only to
   * tls-unique (stock slixmpp 1.8.3) send 'y' over TLS 1.3, where tls-unique is not offered.
   */
  channelBinding: boolean;
  // BOSH (XEP-0124 / XEP-0206) at /http-bind on the edge's port.
  /** Edge: serve BOSH at /http-bind (the session tier always understands it). */
  boshEnabled: boolean;
  /** Longest a session holds a BOSH request with nothing to send (the client's wait is capped to it), ms. */
  boshMaxWaitMs: number;
  /** Most BOSH requests a session holds at once (the client's hold is capped to it). */
  boshMaxHold: number;
  /** A BOSH session with no request held for this long has lost its transport (advertised as inactivity), ms. */
  boshInactivityMs: number;
  /** Most BOSH requests a client may have outstanding: the rid window (advertised as requests; at least hold + 1). */
  boshRequests: number;
  /** Bytes of frames queued for a BOSH session between its requests; past it, it is closed like a slow consumer. */
  boshMaxPendingBytes: number;
  /** Edge: CORS for /http-bind: empty = no CORS headers, "*" = any origin, else a comma-separated list of origins. */
  boshCorsOrigins: string;
}

type Kind = "string" | "int" | "bool" | "list";

export interface Setting {
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
    help: "Redis URL (redis://host:port/db, or redis+cluster://host:port,host:port… for Redis Cluster); empty = in-process bus and stores",
    check: (v: string) => {
      try {
        parseClusterUrl(v);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
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
  metricsPort: {
    kind: "int",
    default: 0,
    min: 0,
    max: 65535,
    help: "edge: separate port for /metrics, /healthz, /readyz (the WebSocket port then has no /metrics); 0 = the WebSocket port",
  },
  c2sPort: {
    kind: "int",
    default: -1,
    min: -1,
    max: 65535,
    help: "edge: TCP c2s port (XMPP over TCP, STARTTLS required unless --c2s-require-tls false); -1 = off",
  },
  c2sTlsPort: {
    kind: "int",
    default: -1,
    min: -1,
    max: 65535,
    help: "edge: direct TLS c2s port (XEP-0368, ALPN xmpp-client); -1 = off",
  },
  c2sRequireTls: {
    kind: "bool",
    default: true,
    help: "edge: require STARTTLS on the c2s port; false = plaintext only, no STARTTLS (tests/dev)",
  },
  tlsCert: {
    kind: "string",
    default: "",
    help: "edge: PEM certificate chain for c2s TLS (with --tls-key); default when SNI matches no pair",
  },
  tlsKey: { kind: "string", default: "", help: "edge: PEM private key of --tls-cert" },
  tlsCertDir: {
    kind: "string",
    default: "",
    help: "edge: directory of <domain>.crt + <domain>.key pairs for c2s TLS, chosen by SNI",
  },
  tlsReloadIntervalMs: {
    kind: "int",
    default: 60000,
    min: 100,
    help: "edge: how often the TLS files are checked and reloaded when changed, ms",
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
  twoHopDelivery: {
    kind: "bool",
    default: true,
    help: "sessions write stanzas straight to other members' connections' edges when safe (one Redis server only)",
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
    help: "unread shard inbox entries past which new streams get resource-constraint and edges hold that shard's frames",
  },
  shardLagSampleIntervalMs: {
    kind: "int",
    default: 1000,
    min: 100,
    max: 60000,
    help: "how often an edge samples the lag of every shard it assigns connections to, ms",
  },
  inboxReadCount: { kind: "int", default: 256, min: 1, max: 10000, help: "entries per read" },
  inboxBlockMs: { kind: "int", default: 1000, min: 10, max: 60000, help: "blocking read, ms" },
  inboxEntriesInFlight: {
    kind: "int",
    default: 4096,
    min: 1,
    max: 1000000,
    help: "shard entries worked on at once (a slow connection holds up only its own entries)",
  },
  inboxSlowBatchMs: {
    kind: "int",
    default: 10,
    min: 0,
    max: 10000,
    help: "a shard batch still in progress after this long lets the next one be read, ms",
  },
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
  shardLeaseTtlMs: {
    kind: "int",
    default: 5000,
    min: 500,
    max: 300000,
    help: "a shard lease outlives its last renewal this long; a dead member's shards wait this long, ms",
  },
  membership: {
    kind: "string",
    default: "",
    help: "session membership backend: redis | static | kubernetes; empty = redis with --redis, else static",
    check: (v: string) =>
      ["", "redis", "static", "kubernetes"].includes(v)
        ? undefined
        : "must be redis, static or kubernetes",
  },
  kubernetesNamespace: {
    kind: "string",
    default: "",
    help: "kubernetes membership: namespace of the session Service (set from metadata.namespace)",
  },
  kubernetesSessionService: {
    kind: "string",
    default: "megaphone-session",
    help: "kubernetes membership: the Service whose ready endpoints are the session members",
  },
  kubernetesApiUrl: {
    kind: "string",
    default: "",
    help: "kubernetes membership: API server URL; empty = in-cluster ServiceAccount",
  },
  members: {
    kind: "list",
    default: [],
    help: "static membership: the member ids (each session's --id) sharing the shards; empty = this session alone",
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
  membershipHeartbeatIntervalMs: {
    kind: "int",
    default: 1000,
    min: 50,
    max: 60000,
    help: "session membership heartbeat period; members read the live set as often, ms",
  },
  membershipTtlMs: {
    kind: "int",
    default: 3000,
    min: 200,
    max: 300000,
    help: "a session member silent this long leaves the live set (its shards move), ms",
  },
  shutdownGraceMs: {
    kind: "int",
    default: 20000,
    min: 0,
    help: "drain time on SIGTERM, ms (below terminationGracePeriodSeconds)",
  },
  drainDelayMs: {
    kind: "int",
    default: 3000,
    min: 0,
    max: 300000,
    help: "edge SIGTERM: /readyz 503 this long before the first socket is closed, ms",
  },
  drainWindowMs: {
    kind: "int",
    default: 10000,
    min: 0,
    max: 600000,
    help: "edge SIGTERM: sockets are closed spread evenly over this window, ms (delay + window within shutdownGraceMs)",
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
  webClient: {
    kind: "bool",
    default: true,
    help: "edge: serve the converse.js web client at / (false: / is 404)",
  },
  webClientCacheBytes: {
    kind: "int",
    default: 16 * KIB * KIB,
    min: 0,
    max: 1024 * KIB * KIB,
    help: "edge: web client file bytes kept in memory (least recently used dropped past it)",
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
  // Stream management (XEP-0198).
  resumptionTimeoutMs: {
    kind: "int",
    default: 300000,
    min: 1000,
    help: "XEP-0198: a session whose transport is lost waits this long to be resumed, ms",
  },
  smMaxUnackedStanzas: {
    kind: "int",
    default: 1000,
    min: 8,
    help: "XEP-0198: stanzas kept for resending per session until acked; past it it ends",
  },
  // FAST (XEP-0484), over SASL2 (XEP-0388).
  fastTokenTtlMs: {
    kind: "int",
    default: 14 * 24 * 3600 * 1000,
    min: 60000,
    help: "XEP-0484: FAST token lifetime, ms; rotated when used with less than half left",
  },
  fastRequiresTls: {
    kind: "bool",
    default: true,
    help: "XEP-0484: offer FAST tokens only on secure connections (see plainRequiresTls)",
  },
  channelBinding: {
    kind: "bool",
    default: false,
    help: "offer SCRAM-*-PLUS and XEP-0440 on TLS connections the edge terminates; a client then sending 'y' is refused as a downgrade (RFC 5802 §6), which stock slixmpp 1.8.3 does over TLS 1.3 (it binds only to tls-unique, offered on TLS 1.2)",
  },
  // BOSH (XEP-0124 / XEP-0206).
  boshEnabled: { kind: "bool", default: true, help: "edge: serve BOSH (XEP-0206) at /http-bind" },
  boshMaxWaitMs: {
    kind: "int",
    default: 60000,
    min: 1000,
    max: 600000,
    help: "BOSH: longest a request is held with nothing to send (caps the client's wait), ms",
  },
  boshMaxHold: {
    kind: "int",
    default: 1,
    min: 1,
    max: 8,
    help: "BOSH: most requests held at once (caps the client's hold)",
  },
  boshInactivityMs: {
    kind: "int",
    default: 60000,
    min: 2000,
    help: "BOSH: a session with no request held this long has lost its transport, ms",
  },
  boshRequests: {
    kind: "int",
    default: 2,
    min: 2,
    max: 16,
    help: "BOSH: the rid window, requests a client may have outstanding (at least hold + 1)",
  },
  boshMaxPendingBytes: {
    kind: "int",
    default: 512 * KIB,
    min: 16 * KIB,
    help: "BOSH: bytes queued for a session between requests; past it it is closed as a slow consumer",
  },
  boshCorsOrigins: {
    kind: "string",
    default: "",
    help: "edge: CORS origins for /http-bind: empty = no CORS headers, * = any, or a comma-separated list",
  },
};

export const DEFAULTS: Config = Object.fromEntries(
  Object.entries(SETTINGS).map(([k, s]) => [k, s.default]),
) as unknown as Config;
