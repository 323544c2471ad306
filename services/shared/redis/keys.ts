// Every Redis key Megaphone uses, built in one place. Hash tags ({…}) keep what must be
// atomic in one Redis Cluster slot: all keys of one user share {<bare jid>}.
export interface Keys {
  shardInbox(shard: number): string;
  edgeInbox(edgeId: string): string;
  account(bareJid: string): string;
  /** The secret SCRAM stand-in salts of nonexistent users derive from, one per deployment. */
  scramStandInKey(): string;
  roster(bareJid: string): string;
  rosterVersion(bareJid: string): string;
  /** Inbound subscription requests awaiting the user's answer (kept apart from roster items). */
  rosterPending(bareJid: string): string;
  /** Online resources: resource → routing JSON (no presence payload). */
  resources(bareJid: string): string;
  /** Last presence of each available resource: resource → {connId, presence} JSON. */
  presences(bareJid: string): string;
  offline(bareJid: string): string;
  /** Sum of the byte lengths of the stanzas in `offline` (kept by the offline push script). */
  offlineBytes(bareJid: string): string;
  /** The sender of each stanza in `offline` ("" for none), in step with it. */
  offlineSenders(bareJid: string): string;
  /** Stanzas in `offline` per sender: sender → count. */
  offlinePerSender(bareJid: string): string;
  /** Origins of the user's recent offline pushes (origin.ts), expiring: repeats are dropped. */
  offlineOrigins(jid: string): string;
  snapshot(shard: number): string;
  /**
   * The live lease on a shard (hash: member, token; expires unless renewed). Under the shard's
   * tag, so a fenced write checks it in the same script as the shard's state.
   */
  shardLease(shard: number): string;
  /** The last fencing token handed out for a shard (a counter that never expires). */
  shardLeaseToken(shard: number): string;
  /** Which incarnation (edge address) holds an edge id: refuses a second edge with the same id. */
  edgeIdClaim(edgeId: string): string;
  /** Present while the edge incarnation at `address` heartbeats (short expiry). */
  edgeAlive(address: string): string;
  /** The last inbox entry id the edge at `address` handed to its sockets. */
  edgeReadCursor(address: string): string;
  /** Marks an edge address declared dead: it may never heartbeat again. */
  edgeBuried(address: string): string;
  /** Held by the process recovering a dead edge's inbox. */
  edgeRecoveryLock(address: string): string;
  /** Every registered edge address, scored by its last heartbeat (ms): finds dead ones. */
  edges(): string;
  /**
   * Live session members: member id → expiry (Redis server time, ms). One key, so the
   * heartbeat script touches a single slot.
   */
  members(): string;
  /**
   * Two-hop delivery: per shard, the last entry a member's direct writes routed into that
   * shard's inbox instead (a hash shard → entry id; DIRECT_DELIVER). One Redis server only.
   */
  directMarks(memberId: string): string;
  /** Directed-presence recipients of one connection (a set, under its shard's tag). */
  directed(shard: number, connId: string): string;
  /** Unacked stanzas of a stream management session (XEP-0198): a hash seq → stanza. */
  smQueue(shard: number, smId: string): string;
  /** Marks a connection whose unacked stanzas its session settled (expires). */
  smSettled(shard: number, connId: string): string;
  /**
   * XEP-0484 FAST tokens of one client installation (SASL2 user-agent id) of a user: a hash
   * with the `fresh` and `current` slots, under the user's tag.
   */
  fastTokens(bareJid: string, agentId: string): string;
}

/**
 * A bare JID as the hash tag of its user's keys. Redis Cluster ends a tag at the first "}", so
 * a JID with a "}" in it (RFC 7622 allows one in a localpart) would cut its tag short, and one
 * that starts with "}" would leave it empty; Redis then hashes each whole key and the user's
 * keys scatter over slots (CROSSSLOT). So "}" is written as ">", which no JID contains (JIDs are
 * parsed before they reach a store, and jid.ts refuses ">"): no two JIDs share a tag by it.
 * A JID without "}" keeps the key it always had.
 */
function userTag(bareJid: string): string {
  return bareJid.replaceAll("}", ">");
}

/** `prefix` lets tests (and co-tenant deployments) share one Redis without collisions. */
export function redisKeys(prefix = "mp"): Keys {
  const user = (jid: string, suffix: string) => `${prefix}:{${userTag(jid)}}:${suffix}`;
  return {
    shardInbox: (shard) => `${prefix}:{s${shard}}:in`,
    edgeInbox: (edgeId) => `${prefix}:edge:{${edgeId}}`,
    account: (jid) => user(jid, "account"),
    scramStandInKey: () => `${prefix}:{scram}:standinkey`,
    roster: (jid) => user(jid, "roster"),
    rosterVersion: (jid) => user(jid, "rosterver"),
    rosterPending: (jid) => user(jid, "rosterpend"),
    resources: (jid) => user(jid, "res"),
    presences: (jid) => user(jid, "pres"),
    offline: (jid) => user(jid, "offline"),
    offlineBytes: (jid) => user(jid, "offlinebytes"),
    offlineSenders: (jid) => user(jid, "offlinesenders"),
    offlinePerSender: (jid) => user(jid, "offlinepersender"),
    offlineOrigins: (jid) => user(jid, "offlineorigins"),
    snapshot: (shard) => `${prefix}:{s${shard}}:conns`,
    shardLease: (shard) => `${prefix}:{s${shard}}:lease`,
    shardLeaseToken: (shard) => `${prefix}:{s${shard}}:leasetoken`,
    edgeIdClaim: (edgeId) => `${prefix}:edgeid:{${edgeId}}`,
    edgeAlive: (address) => `${prefix}:edge:{${address}}:alive`,
    edgeReadCursor: (address) => `${prefix}:edge:{${address}}:read`,
    edgeBuried: (address) => `${prefix}:edge:{${address}}:buried`,
    edgeRecoveryLock: (address) => `${prefix}:edge:{${address}}:recovering`,
    edges: () => `${prefix}:edges`,
    members: () => `${prefix}:{members}:live`,
    directMarks: (memberId) => `${prefix}:{direct:${memberId}}:marks`,
    directed: (shard, connId) => `${prefix}:{s${shard}}:directed:${connId}`,
    smQueue: (shard, smId) => `${prefix}:{s${shard}}:sm:${smId}`,
    smSettled: (shard, connId) => `${prefix}:{s${shard}}:smsettled:${connId}`,
    fastTokens: (jid, agentId) => user(jid, `fast:${agentId}`),
  };
}
