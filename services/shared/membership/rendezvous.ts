// Rendezvous (highest random weight) hashing: shard s belongs to the member m with the highest
// weight(m, s). Every process computes the same answer from the same member set, with no
// coordination, and a change of one member moves only the shards that member gains or loses
// (about S/N of S shards among N members): everyone else's weights are untouched.
//
// The weight is 64-bit FNV-1a of the UTF-8 bytes of `${member}:${shard}`, followed by a
// 64-bit finalizer (the murmur3 fmix64 steps) so that members whose ids differ only in their
// last characters still get independent weights. Ties (astronomically rare) go to the
// smaller member id, so the answer never depends on the order members are listed in.

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK64 = 0xffffffffffffffffn;
const encoder = new TextEncoder();

/** The weight of `member` for `shard`: a deterministic 64-bit value. */
export function weight(member: string, shard: number): bigint {
  let h = FNV_OFFSET;
  for (const byte of encoder.encode(`${member}:${shard}`)) {
    h ^= BigInt(byte);
    h = (h * FNV_PRIME) & MASK64;
  }
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK64;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK64;
  h ^= h >> 33n;
  return h;
}

/** The member that should own `shard`, or undefined when there are no members. */
export function ownerOf(shard: number, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1n;
  for (const member of members) {
    const w = weight(member, shard);
    if (w > bestWeight || (w === bestWeight && best !== undefined && member < best)) {
      best = member;
      bestWeight = w;
    }
  }
  return best;
}

/** The shards among 0..shardCount-1 that `member` should own, ascending. */
export function shardsOf(member: string, members: readonly string[], shardCount: number): number[] {
  const owned: number[] = [];
  for (let shard = 0; shard < shardCount; shard++)
    if (ownerOf(shard, members) === member) owned.push(shard);
  return owned;
}
