// Which session members are alive (DESIGN.md, "Sharding and membership"). Each session process
// is one member with a stable id (its pod name); rendezvous hashing (rendezvous.ts) over the
// live set says which shards each member should own. Membership only says who is alive: a
// member serves a shard only while it also holds that shard's lease, so two views that briefly
// disagree (one member noticed a change a heartbeat before another) never make two processes
// serve one shard. Implementations: StaticMembership (a fixed list), MemoryMembership (one
// process: tests, all-in-one), RedisMembership (heartbeats with expiry) and
// KubernetesMembership (the ready endpoints of the session Service). The last has no
// heartbeats: the kubelet's readiness decides who is live, so where the docs below speak of
// heartbeats and ttlMs it differs as its file header says (join() does not wait for the
// member's own pod to be ready; a member goes when its pod turns unready or is deleted).

/** Called with the new live set (sorted, without duplicates) each time it changes. */
export type MembershipListener = (members: readonly string[]) => void;

export interface Membership {
  /**
   * Makes `memberId` a live member and keeps it one (heartbeats) until leave() or close().
   * Resolves once this instance's view holds the live set, `memberId` included. An instance
   * joins once; a restarted process joining with an id whose previous holder has not expired
   * yet simply takes over that entry (both are one member until the old one stops).
   */
  join(memberId: string): Promise<void>;

  /**
   * The live members as this instance last saw them: sorted, without duplicates; empty before
   * join() and after leave(). Other instances see a join or leave at their next heartbeat, so
   * views may differ for up to one heartbeat interval. A member whose heartbeats have failed
   * for ttlMs (the store unreachable) sees an empty set too, since the others have dropped it;
   * its next successful heartbeat brings the live set back.
   */
  members(): readonly string[];

  /**
   * Calls `listener` with the new live set on every change of members(), never for an
   * unchanged set; the first call is the set join() found. Returns the unsubscribe function.
   */
  onChange(listener: MembershipListener): () => void;

  /**
   * A planned exit: this member leaves the live set at once (the others notice at their next
   * heartbeat, not after the expiry) and stops heartbeating; the view becomes empty, so a
   * caller owning shards by it owns none.
   */
  leave(): Promise<void>;

  /**
   * Stops heartbeating and watching and frees resources, WITHOUT leaving: like a crash, the
   * member stays in the others' views until its heartbeat expires (ttlMs after its last
   * renewal, seen by the others within one more heartbeat interval). A clean stop calls
   * leave() first.
   */
  close(): Promise<void>;
}

export interface MembershipOptions {
  /** How often a member renews its heartbeat and rereads the live set. */
  heartbeatIntervalMs: number;
  /** A member whose last renewal is this old is no longer live. Above heartbeatIntervalMs. */
  ttlMs: number;
}

/** Sorted, without duplicates: the one form members() ever takes. */
export function normalizeMembers(ids: Iterable<string>): string[] {
  return [...new Set(ids)].sort();
}

/** True when two normalized member lists are the same set. */
export function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}
