// services/shared/redis/keys.ts: the keys that one script, transaction or multi-key command
// touches together share one Redis Cluster hash tag (so one slot), whatever the JID.
import { strict as assert } from "node:assert";
import { redisKeys } from "../../services/shared/redis/keys.js";

/** The part of `key` Redis Cluster hashes (the hash tag rule of the cluster spec). */
function hashed(key: string): string {
  const open = key.indexOf("{");
  if (open < 0) return key;
  const close = key.indexOf("}", open + 1);
  if (close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

function oneTag(keys: string[]): string {
  const tags = new Set(keys.map(hashed));
  assert.equal(tags.size, 1, `one hash tag for ${keys.join(", ")}, not ${[...tags].join(", ")}`);
  return [...tags][0];
}

const keys = redisKeys("mp");

describe("Redis keys and their hash tags", () => {
  // RFC 7622 allows { and } in a localpart; a leading } would empty the tag.
  for (const jid of [
    "alice@localhost",
    "}x@localhost",
    "a}b@localhost",
    "{x@localhost",
    "x{}@localhost",
    "a@[::1]",
  ]) {
    it(`keeps every key of ${jid} under one tag`, () => {
      const userKeys = [
        keys.account(jid),
        keys.roster(jid),
        keys.rosterVersion(jid),
        keys.rosterPending(jid),
        keys.resources(jid),
        keys.presences(jid),
        keys.offline(jid),
        keys.offlineBytes(jid),
        keys.offlineSenders(jid),
        keys.offlinePerSender(jid),
        // A user-agent id with braces of its own cannot move the tag.
        keys.fastTokens(jid, "{agent}"),
      ];
      const tag = oneTag(userKeys);
      // The whole JID is the tag: users never share a slot by accident of a brace.
      assert.equal(tag, jid.replaceAll("}", ">"));
    });
  }

  it("keeps the key a JID without } always had", () => {
    assert.equal(keys.roster("alice@localhost"), "mp:{alice@localhost}:roster");
    assert.equal(keys.offline("{x@localhost"), "mp:{{x@localhost}:offline");
  });

  it("gives distinct JIDs distinct keys (no JID has the > that stands for })", () => {
    const jids = ["a}b@localhost", "ab@localhost", "a@localhost", "}a@localhost", "a}@localhost"];
    assert.equal(new Set(jids.map((jid) => keys.account(jid))).size, jids.length);
  });

  it("keeps a shard's inbox, snapshots, lease, token and directed sets under one tag", () => {
    for (const shard of [0, 7, 63]) {
      assert.equal(
        oneTag([
          keys.shardInbox(shard),
          keys.snapshot(shard),
          keys.shardLease(shard),
          keys.shardLeaseToken(shard),
          keys.directed(shard, `e1:ab.${shard}.1`),
        ]),
        `s${shard}`,
      );
    }
  });

  it("keeps an edge incarnation's inbox, cursor, marks and recovery lock under one tag", () => {
    const address = "edge-1:0a1b2c3d4e";
    assert.equal(
      oneTag([
        keys.edgeInbox(address),
        keys.edgeReadCursor(address),
        keys.edgeAlive(address),
        keys.edgeBuried(address),
        keys.edgeRecoveryLock(address),
      ]),
      address,
    );
  });
});
