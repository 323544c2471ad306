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
  /** Directed-presence recipients of one connection (a set, under its shard's tag). */
  directed(shard: number, connId: string): string;
  /** Unacked stanzas of a stream management session (XEP-0198): a hash seq → stanza. */
  smQueue(shard: number, smId: string): string;
  /** Marks a connection whose unacked stanzas its session settled (expires). */
  smSettled(shard: number, connId: string): string;
}

/** `prefix` lets tests (and co-tenant deployments) share one Redis without collisions. */
export function redisKeys(prefix = "mp"): Keys {
  return {
    shardInbox: (shard) => `${prefix}:{s${shard}}:in`,
    edgeInbox: (edgeId) => `${prefix}:edge:{${edgeId}}`,
    account: (jid) => `${prefix}:{${jid}}:account`,
    scramStandInKey: () => `${prefix}:{scram}:standinkey`,
    roster: (jid) => `${prefix}:{${jid}}:roster`,
    rosterVersion: (jid) => `${prefix}:{${jid}}:rosterver`,
    rosterPending: (jid) => `${prefix}:{${jid}}:rosterpend`,
    resources: (jid) => `${prefix}:{${jid}}:res`,
    presences: (jid) => `${prefix}:{${jid}}:pres`,
    offline: (jid) => `${prefix}:{${jid}}:offline`,
    offlineBytes: (jid) => `${prefix}:{${jid}}:offlinebytes`,
    offlineSenders: (jid) => `${prefix}:{${jid}}:offlinesenders`,
    offlinePerSender: (jid) => `${prefix}:{${jid}}:offlinepersender`,
    offlineOrigins: (jid) => `${prefix}:{${jid}}:offlineorigins`,
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
    directed: (shard, connId) => `${prefix}:{s${shard}}:directed:${connId}`,
    smQueue: (shard, smId) => `${prefix}:{s${shard}}:sm:${smId}`,
    smSettled: (shard, connId) => `${prefix}:{s${shard}}:smsettled:${connId}`,
  };
}
