// Every Redis key Megaphone uses, built in one place. Hash tags ({…}) keep what must be
// atomic in one Redis Cluster slot: all keys of one user share {<bare jid>}.
export interface Keys {
  shardInbox(shard: number): string;
  edgeInbox(edgeId: string): string;
  account(bareJid: string): string;
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
  snapshot(shard: number): string;
  /** Directed-presence recipients of one connection (a set, under its shard's tag). */
  directed(shard: number, connId: string): string;
}

/** `prefix` lets tests (and co-tenant deployments) share one Redis without collisions. */
export function redisKeys(prefix = "mp"): Keys {
  return {
    shardInbox: (shard) => `${prefix}:{s${shard}}:in`,
    edgeInbox: (edgeId) => `${prefix}:edge:{${edgeId}}`,
    account: (jid) => `${prefix}:{${jid}}:account`,
    roster: (jid) => `${prefix}:{${jid}}:roster`,
    rosterVersion: (jid) => `${prefix}:{${jid}}:rosterver`,
    rosterPending: (jid) => `${prefix}:{${jid}}:rosterpend`,
    resources: (jid) => `${prefix}:{${jid}}:res`,
    presences: (jid) => `${prefix}:{${jid}}:pres`,
    offline: (jid) => `${prefix}:{${jid}}:offline`,
    offlineBytes: (jid) => `${prefix}:{${jid}}:offlinebytes`,
    offlineSenders: (jid) => `${prefix}:{${jid}}:offlinesenders`,
    offlinePerSender: (jid) => `${prefix}:{${jid}}:offlinepersender`,
    snapshot: (shard) => `${prefix}:{s${shard}}:conns`,
    directed: (shard, connId) => `${prefix}:{s${shard}}:directed:${connId}`,
  };
}
