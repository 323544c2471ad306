// Typed access to the Lua scripts in `scripts.ts`. `defineCommand` makes ioredis send EVALSHA
// (falling back to EVAL once per script) with the client's other commands of the turn, so a script call
// costs no more round trips than a native command. A typed view, rather than a module
// augmentation of ioredis, keeps these methods off clients that never had them defined.
import type { Redis } from "./client.js";
import * as lua from "./scripts.js";

export interface ScriptCommands {
  /** See ROSTER_READ: [item fields and values, flat; version or null]. */
  mpRosterRead(rosterKey: string, versionKey: string): Promise<[string[], string | null]>;
  /** See ROSTER_REPLACE_ITEM: [1, version] | [0, "changed", stored JSON | null] | [0, "full"]. */
  mpRosterReplaceItem(
    rosterKey: string,
    versionKey: string,
    contact: string,
    expectedJson: string,
    nextJson: string,
    maxItems: number,
  ): Promise<[1, string] | [0, "changed", string | null] | [0, "full"]>;
  mpRosterAddPendingIn(
    pendingKey: string,
    contact: string,
    stanza: string,
    maxPending: number,
    maxBytes: number | "",
  ): Promise<0 | 1>;
  /** See ROUTE_BIND: [1, previous connId, previous available 0|1] | [1] | [0] (at the limit). */
  mpRouteBind(
    resourcesKey: string,
    presencesKey: string,
    resource: string,
    bindingJson: string,
    maxResources: number,
  ): Promise<[1, string, 0 | 1] | [1] | [0]>;
  /** See ROUTE_UPDATE: presence is "" (unchanged), "0" (cleared) or "1" + XML (stored). */
  mpRouteUpdate(
    resourcesKey: string,
    presencesKey: string,
    resource: string,
    connId: string,
    fieldsJson: string,
    presence: string,
  ): Promise<0 | 1>;
  /** See DIRECT_DELIVER: [1, edge entry id] | [0, route entry id] | [2, undelivered entry id]. */
  mpDirectDeliver(
    resourcesKey: string,
    edgeInboxKey: string,
    shardInboxKey: string,
    directMarksKey: string,
    resource: string,
    connId: string,
    edge: string,
    mark: string,
    group: string,
    stanza: string,
    origin: string,
    shard: number,
  ): Promise<[0 | 1 | 2, string]>;
  mpRouteUnbind(
    resourcesKey: string,
    presencesKey: string,
    resource: string,
    connId: string,
  ): Promise<0 | 1>;
  /** See OFFLINE_PUSH: 1 stored, 0 queue full, -1 sender's bound reached. */
  mpOfflinePush(
    offlineKey: string,
    offlineBytesKey: string,
    offlineSendersKey: string,
    offlinePerSenderKey: string,
    offlineOriginsKey: string,
    maxStanzas: number,
    maxBytes: number,
    stanza: string,
    sender: string,
    maxPerSender: number,
    origin: string,
    originTtlMs: number,
  ): Promise<-1 | 0 | 1>;
  mpOfflineRemoveDelivered(
    offlineKey: string,
    offlineBytesKey: string,
    offlineSendersKey: string,
    offlinePerSenderKey: string,
    ...stanzas: string[]
  ): Promise<number>;
  /** See EDGE_CLAIM: null when `address` holds the claim, else the holder. */
  mpEdgeClaim(claimKey: string, address: string, ttlMs: number): Promise<string | null>;
  mpEdgeAlive(aliveKey: string, buriedKey: string, ttlMs: number): Promise<0 | 1 | 2>;
  mpEdgeBury(aliveKey: string, buriedKey: string, ttlMs: number): Promise<0 | 1>;
  mpEdgeInboxDeleteIfDrained(inboxKey: string, cursorKey: string, lastId: string): Promise<0 | 1>;
  mpReleaseLock(lockKey: string, token: string): Promise<0 | 1>;
  /** See MEMBERSHIP_HEARTBEAT: the live member ids after renewing `memberId`. */
  mpMembershipHeartbeat(membersKey: string, memberId: string, ttlMs: number): Promise<string[]>;
  /** See DIRECTED_ADD: 1 added, 0 already present, -1 refused by a bound. */
  mpDirectedAdd(
    directedKey: string,
    shardLeaseKey: string,
    jid: string,
    maxRecipients: number,
    maxBytes: number,
    /** "" for an unfenced write. */
    token: string,
  ): Promise<-1 | 0 | 1>;
  /** See FENCED_CALL: the command's reply; rejects with "FENCED <live token>". */
  mpFencedCall(
    shardLeaseKey: string,
    key: string,
    token: string,
    command: string,
    ...args: (string | number)[]
  ): Promise<unknown>;
  /** See SHARD_LEASE_ACQUIRE: the fencing token (as a string), or 0 while the shard is held. */
  mpShardLeaseAcquire(
    leaseKey: string,
    tokenKey: string,
    member: string,
    ttlMs: number,
  ): Promise<string | 0>;
  mpShardLeaseRenew(leaseKey: string, token: string, ttlMs: number): Promise<0 | 1>;
  mpShardLeaseRelease(leaseKey: string, token: string): Promise<0 | 1>;
  mpFastTokenIssue(pairKey: string, record: string, expiresAtMs: number): Promise<1>;
  /** See FAST_TOKEN_USE: 1 accepted, 0 refused. */
  mpFastTokenUse(pairKey: string, hash: string, nowMs: number, count: number | ""): Promise<0 | 1>;
  mpFastTokenInvalidate(pairKey: string, hash: string): Promise<0 | 1>;
  /** See STREAM_ADMIN: XGROUP or XINFO on `stream`, routed by it in a cluster. */
  mpStreamAdmin(
    stream: string,
    command: "XGROUP" | "XINFO",
    subcommand: string,
    ...args: string[]
  ): Promise<unknown>;
  /**
   * See FENCED_SNAPSHOT_WRITE: [1, acknowledged of each shard…] | [0, position of the fenced
   * shard, its live token or ""]. The number of keys first (per shard 3 + one per queued
   * stanza), then the keys, then the arguments.
   */
  mpFencedSnapshotWrite(
    numberOfKeys: number,
    ...keysThenArgs: (string | number)[]
  ): Promise<[1, ...number[]] | [0, number, string]>;
  /** See FENCED_XACK: [1, acknowledged] | [0, live token or ""] fenced. */
  mpFencedXack(
    leaseKey: string,
    inboxKey: string,
    token: string,
    group: string,
    ...ids: string[]
  ): Promise<[1, number] | [0, string]>;
  /** See FENCED_XACK_MANY: one FENCED_XACK reply per shard. */
  mpFencedXackMany(
    numberOfKeys: number,
    ...keysThenArgs: (string | number)[]
  ): Promise<([1, number] | [0, string])[]>;
}

/** numberOfKeys absent: the caller passes it first (a script with a variable number of keys). */
const DEFINITIONS: Record<keyof ScriptCommands, { numberOfKeys?: number; lua: string }> = {
  mpRosterRead: { numberOfKeys: 2, lua: lua.ROSTER_READ },
  mpRosterReplaceItem: { numberOfKeys: 2, lua: lua.ROSTER_REPLACE_ITEM },
  mpRosterAddPendingIn: { numberOfKeys: 1, lua: lua.ROSTER_ADD_PENDING_IN },
  mpRouteBind: { numberOfKeys: 2, lua: lua.ROUTE_BIND },
  mpRouteUpdate: { numberOfKeys: 2, lua: lua.ROUTE_UPDATE },
  mpRouteUnbind: { numberOfKeys: 2, lua: lua.ROUTE_UNBIND },
  mpDirectDeliver: { numberOfKeys: 4, lua: lua.DIRECT_DELIVER },
  mpOfflinePush: { numberOfKeys: 5, lua: lua.OFFLINE_PUSH },
  mpOfflineRemoveDelivered: { numberOfKeys: 4, lua: lua.OFFLINE_REMOVE_DELIVERED },
  mpDirectedAdd: { numberOfKeys: 2, lua: lua.DIRECTED_ADD },
  mpFencedCall: { numberOfKeys: 2, lua: lua.FENCED_CALL },
  mpShardLeaseAcquire: { numberOfKeys: 2, lua: lua.SHARD_LEASE_ACQUIRE },
  mpShardLeaseRenew: { numberOfKeys: 1, lua: lua.SHARD_LEASE_RENEW },
  mpShardLeaseRelease: { numberOfKeys: 1, lua: lua.SHARD_LEASE_RELEASE },
  mpFencedSnapshotWrite: { lua: lua.FENCED_SNAPSHOT_WRITE },
  mpFencedXack: { numberOfKeys: 2, lua: lua.FENCED_XACK },
  mpFencedXackMany: { lua: lua.FENCED_XACK_MANY },
  mpEdgeClaim: { numberOfKeys: 1, lua: lua.EDGE_CLAIM },
  mpEdgeAlive: { numberOfKeys: 2, lua: lua.EDGE_ALIVE },
  mpEdgeBury: { numberOfKeys: 2, lua: lua.EDGE_BURY },
  mpEdgeInboxDeleteIfDrained: { numberOfKeys: 2, lua: lua.EDGE_INBOX_DELETE_IF_DRAINED },
  mpReleaseLock: { numberOfKeys: 1, lua: lua.RELEASE_LOCK },
  mpMembershipHeartbeat: { numberOfKeys: 1, lua: lua.MEMBERSHIP_HEARTBEAT },
  mpFastTokenIssue: { numberOfKeys: 1, lua: lua.FAST_TOKEN_ISSUE },
  mpFastTokenUse: { numberOfKeys: 1, lua: lua.FAST_TOKEN_USE },
  mpFastTokenInvalidate: { numberOfKeys: 1, lua: lua.FAST_TOKEN_INVALIDATE },
  mpStreamAdmin: { numberOfKeys: 1, lua: lua.STREAM_ADMIN },
};

const clientsWithScripts = new WeakSet<Redis>();

/** Defines every script on `redis` (once per client) and returns the client's typed view. */
export function scriptCommands(redis: Redis): ScriptCommands {
  if (!clientsWithScripts.has(redis)) {
    for (const [name, definition] of Object.entries(DEFINITIONS)) {
      redis.defineCommand(name, definition);
    }
    clientsWithScripts.add(redis);
  }
  // defineCommand added exactly these methods to this object at runtime.
  return redis as unknown as ScriptCommands;
}
