// Lua source of every script that must be atomic across commands (STYLE 2.13). They live in
// TypeScript rather than in .lua files because the build copies only compiled .js into dist/,
// so a .lua file read at runtime would be missing from a shipped image. `script-commands.ts`
// loads them once per client with `defineCommand`. Each script touches the keys of one hash
// tag only (one user, one shard or one edge address), so all its KEYS share one Redis Cluster
// slot.
//
// Redis Lua notes: HGET on a missing field returns false (not nil); returning false replies nil.

/**
 * Roster replaceItem (compare-and-set). KEYS: roster, rosterVersion.
 * ARGV: contact, expected item JSON ("" = no item), next item JSON ("" = remove), max items.
 * Compares the stored JSON with `expected` byte for byte (both are in the canonical form of
 * roster-item-json.ts), refuses to create an item past `max items`, then writes and bumps the
 * version together, so no reader sees one without the other and no two writers both win.
 * Returns {1, version} on success (the unchanged version for removing an absent item),
 * {0, "changed", stored JSON or nil} on a mismatch, {0, "full"} at the limit.
 */
export const ROSTER_REPLACE_ITEM = `
local stored = redis.call("HGET", KEYS[1], ARGV[1])
if (stored or "") ~= ARGV[2] then return {0, "changed", stored} end
if ARGV[3] == "" then
  if not stored then return {1, redis.call("GET", KEYS[2]) or "0"} end
  redis.call("HDEL", KEYS[1], ARGV[1])
else
  if not stored and redis.call("HLEN", KEYS[1]) >= tonumber(ARGV[4]) then return {0, "full"} end
  redis.call("HSET", KEYS[1], ARGV[1], ARGV[3])
end
return {1, tostring(redis.call("INCR", KEYS[2]))}
`;

/**
 * Roster get. KEYS: roster, rosterVersion. Returns {HGETALL's flat field/value list, version or
 * nil}: one script, so the version always matches the items read with it, in one command
 * where a MULTI of the two reads took four.
 */
export const ROSTER_READ = `
return {redis.call("HGETALL", KEYS[1]), redis.call("GET", KEYS[2])}
`;

/**
 * Roster addPendingIn. KEYS: rosterPending. ARGV: contact, stanza XML, max pending, max bytes
 * ("" for none). Replaces the contact's request, or adds it while fewer than `max pending` are
 * stored, as long as the stored requests then hold at most `max bytes` (Lua's # and HSTRLEN
 * count bytes); the checks and the write must not interleave with other adds or a bound would
 * be overshot. Returns 1 if stored, else 0.
 */
export const ROSTER_ADD_PENDING_IN = `
if redis.call("HEXISTS", KEYS[1], ARGV[1]) == 0 and redis.call("HLEN", KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
if ARGV[4] ~= "" then
  local bytes = #ARGV[2]
  for _, contact in ipairs(redis.call("HKEYS", KEYS[1])) do
    if contact ~= ARGV[1] then bytes = bytes + redis.call("HSTRLEN", KEYS[1], contact) end
  end
  if bytes > tonumber(ARGV[4]) then return 0 end
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
return 1
`;

/**
 * Route bind. KEYS: resources, presences. ARGV: resource, binding JSON, max resources.
 * Replaces the binding of a bound resource (dropping its stored presence); binds a new one only
 * while fewer than `max resources` are bound (the count and the write must not interleave with
 * other binds or the bound would be overshot). The binding remembers the one it replaced
 * (`took`), so that the same connection binding again (its bind delivered again after a failed
 * batch) gets the same answer and can finish the takeover. Returns {1, previous connId, 1 if
 * it was available else 0} on a replace, {1} on a new binding, {0} at the limit.
 */
export const ROUTE_BIND = `
local previous = redis.call("HGET", KEYS[1], ARGV[1])
if not previous and redis.call("HLEN", KEYS[1]) >= tonumber(ARGV[3]) then return {0} end
local binding = cjson.decode(ARGV[2])
if previous then
  local before = cjson.decode(previous)
  if before.connId == binding.connId then
    binding.took = before.took
  else
    binding.took = {connId = before.connId, available = before.available == true}
  end
end
redis.call("HSET", KEYS[1], ARGV[1], cjson.encode(binding))
redis.call("HDEL", KEYS[2], ARGV[1])
if binding.took then
  local available = 0
  if binding.took.available then available = 1 end
  return {1, binding.took.connId, available}
end
return {1}
`;

/**
 * Route update. KEYS: resources, presences. ARGV: resource, connId, fields JSON, presence.
 * Only while `connId` still holds the resource (so a closing connection cannot overwrite its
 * successor): merges the fields into the binding, and for a presence of "1" + XML marks it
 * available and stores {connId, presence}, for "0" marks it unavailable and drops the stored
 * presence ("" leaves both alone). The `edge` field (two-hop delivery) is removed when the
 * fields set it to "" and whenever the binding is not available, in this same step, so no
 * direct write (DIRECT_DELIVER) can follow a change that made it wrong. Returns 1 or 0.
 */
export const ROUTE_UPDATE = `
local current = redis.call("HGET", KEYS[1], ARGV[1])
if not current then return 0 end
local binding = cjson.decode(current)
if binding.connId ~= ARGV[2] then return 0 end
for field, value in pairs(cjson.decode(ARGV[3])) do binding[field] = value end
local presence = ARGV[4]
if presence == "0" then
  binding.available = false
  redis.call("HDEL", KEYS[2], ARGV[1])
elseif presence ~= "" then
  binding.available = true
  redis.call("HSET", KEYS[2], ARGV[1],
    cjson.encode({connId = ARGV[2], presence = string.sub(presence, 2)}))
end
if binding.edge == "" or binding.available ~= true then binding.edge = nil end
redis.call("HSET", KEYS[1], ARGV[1], cjson.encode(binding))
return 1
`;

/**
 * Two-hop delivery (docs/capacity.md): a stanza for connection `connId` written by the sender's
 * session straight to the recipient's edge inbox when that is safe, else as a `route` packet
 * to the recipient's shard inbox, in one step so that nothing can come between the check and
 * the write. One Redis server only: the keys are in four cluster slots.
 * KEYS: resources (the recipient user's bindings), edgeInbox, shardInbox (the connection's),
 * directMarks (the writing member's). ARGV: resource, connId, edge address, order mark ("" none),
 * group, stanza, origin ("" none), shard.
 * Direct only while the binding still names the connection and carries `edge` = the address
 * (ROUTE_UPDATE removes it in the step of any change that makes it wrong), and once the group
 * has read past the order mark with nothing at or below it pending: every stanza the member
 * put in that inbox before has been written to the edge by the recipient's session (RFC 6120
 * §10.1 order). The mark is the later of the member's own (ARGV: its routes and a takeover's
 * inbox ends) and the last fallback of its direct writes to that shard, recorded here in the
 * step that wrote it, so a write issued before the previous one's answer still sees it; a
 * recorded fallback found handled is forgotten, and a member's record expires a day after its
 * last fallback (member ids come and go with pods).
 * The edge inbox is never created (NOMKSTREAM): a dead edge's stanza goes to the connection's
 * shard as `undelivered`, as the recipient's session would have sent it back.
 * Returns {1, edge entry id} written to the edge, {0, inbox entry id} routed, {2, inbox entry
 * id} returned as undelivered.
 */
export const DIRECT_DELIVER = `
local function older(a, b)
  local am, as = string.match(a, "^(%d+)-(%d+)$")
  local bm, bs = string.match(b, "^(%d+)-(%d+)$")
  if tonumber(am) ~= tonumber(bm) then return tonumber(am) < tonumber(bm) end
  return tonumber(as) < tonumber(bs)
end
local direct = false
local stored = redis.call("HGET", KEYS[1], ARGV[1])
if stored then
  local binding = cjson.decode(stored)
  direct = binding.connId == ARGV[2] and binding.edge == ARGV[3]
end
local mark = ARGV[4]
local fallback = redis.call("HGET", KEYS[4], ARGV[8])
if fallback and (mark == "" or older(mark, fallback)) then mark = fallback end
if direct and mark ~= "" then
  direct = false
  local groups = redis.pcall("XINFO", "GROUPS", KEYS[3])
  if type(groups) == "table" and not groups.err then
    for _, group in ipairs(groups) do
      local info = {}
      for i = 1, #group - 1, 2 do info[group[i]] = group[i + 1] end
      if info["name"] == ARGV[5] then
        direct = not older(info["last-delivered-id"], mark) and
          #redis.call("XPENDING", KEYS[3], ARGV[5], "-", mark, 1) == 0
      end
    end
  end
  if direct and fallback then redis.call("HDEL", KEYS[4], ARGV[8]) end
end
local origin = {}
if ARGV[7] ~= "" then origin = {"o", ARGV[7]} end
local kind = 0
local id
if direct then
  id = redis.call("XADD", KEYS[2], "NOMKSTREAM", "*", "k", "data", "c", ARGV[2],
    "d", ARGV[6], unpack(origin))
  if id then return {1, id} end
  kind = 2
  id = redis.call("XADD", KEYS[3], "*", "k", "undelivered", "c", ARGV[2], "e", ARGV[3],
    "d", ARGV[6])
else
  id = redis.call("XADD", KEYS[3], "*", "k", "route", "c", ARGV[2], "d", ARGV[6], unpack(origin))
end
redis.call("HSET", KEYS[4], ARGV[8], id)
redis.call("PEXPIRE", KEYS[4], 86400000)
return {kind, id}
`;

/**
 * Route unbind. KEYS: resources, presences. ARGV: resource, connId.
 * Compare-and-delete: removes the binding and its presence only while `connId` holds it.
 * Returns 1 or 0.
 */
export const ROUTE_UNBIND = `
local current = redis.call("HGET", KEYS[1], ARGV[1])
if not current or cjson.decode(current).connId ~= ARGV[2] then return 0 end
redis.call("HDEL", KEYS[2], ARGV[1])
return redis.call("HDEL", KEYS[1], ARGV[1])
`;

/**
 * Offline push. KEYS: offline, offlineBytes, offlineSenders, offlinePerSender, offlineOrigins.
 * ARGV: max stanzas, max bytes, stanza XML, sender ("" for none), max per sender, origin (""
 * for none), origin ttl ms. A push whose origin is remembered is a repeat: 1, nothing changes.
 * Appends unless the queue would then hold more than `max stanzas` or more than `max bytes`
 * (Lua's # is the byte length), or the sender more than `max per sender` of its stanzas; the
 * checks, the append and the counter updates must not interleave with other pushes or a bound
 * would be overshot. The byte counter is recomputed from the list when it is missing (a queue
 * written before the counter existed) and ignored when the list is empty, so it cannot drift;
 * the senders list is rebuilt (unknown senders, "") when it is not in step with the queue.
 * Returns 1 if appended, 0 when the queue is full, -1 when the sender's bound refused it.
 */
export const OFFLINE_PUSH = `
if ARGV[6] ~= "" and redis.call("HEXISTS", KEYS[5], ARGV[6]) == 1 then return 1 end
local count = redis.call("LLEN", KEYS[1])
if count + 1 > tonumber(ARGV[1]) then return 0 end
local bytes = 0
if count > 0 then
  local stored = redis.call("GET", KEYS[2])
  if stored then
    bytes = tonumber(stored)
  else
    for _, stanza in ipairs(redis.call("LRANGE", KEYS[1], 0, -1)) do bytes = bytes + #stanza end
  end
end
bytes = bytes + #ARGV[3]
if bytes > tonumber(ARGV[2]) then return 0 end
local sender = ARGV[4]
if count == 0 then redis.call("DEL", KEYS[4]) end
if sender ~= "" then
  local held = tonumber(redis.call("HGET", KEYS[4], sender) or "0")
  if held + 1 > tonumber(ARGV[5]) then return -1 end
  redis.call("HSET", KEYS[4], sender, held + 1)
end
if redis.call("LLEN", KEYS[3]) ~= count then
  redis.call("DEL", KEYS[3])
  for _ = 1, count do redis.call("RPUSH", KEYS[3], "") end
end
redis.call("RPUSH", KEYS[1], ARGV[3])
redis.call("RPUSH", KEYS[3], sender)
redis.call("SET", KEYS[2], bytes)
if ARGV[6] ~= "" then
  redis.call("HSET", KEYS[5], ARGV[6], 1)
  redis.call("PEXPIRE", KEYS[5], ARGV[7])
end
return 1
`;

/**
 * Offline: remove delivered stanzas from the head. KEYS: offline, offlineBytes,
 * offlineSenders, offlinePerSender; ARGV the delivered stanzas in order. Removes the longest
 * prefix of the list equal to them, decreases the byte counter by their bytes and their
 * senders' counts (or deletes every key when the list empties).
 */
export const OFFLINE_REMOVE_DELIVERED = `
local removed = 0
local bytes = 0
for i, stanza in ipairs(ARGV) do
  if redis.call("LINDEX", KEYS[1], i - 1) ~= stanza then break end
  removed = i
  bytes = bytes + #stanza
end
if removed == 0 then return 0 end
redis.call("LTRIM", KEYS[1], removed, -1)
if redis.call("LLEN", KEYS[1]) == 0 then
  redis.call("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[4])
  return removed
end
if redis.call("EXISTS", KEYS[2]) == 1 then redis.call("DECRBY", KEYS[2], bytes) end
for _, sender in ipairs(redis.call("LRANGE", KEYS[3], 0, removed - 1)) do
  if sender ~= "" and redis.call("HINCRBY", KEYS[4], sender, -1) <= 0 then
    redis.call("HDEL", KEYS[4], sender)
  end
end
redis.call("LTRIM", KEYS[3], removed, -1)
return removed
`;

/**
 * Edge id claim. KEYS: edgeIdClaim. ARGV: address, ttl ms.
 * Takes or renews the claim for `address` unless another incarnation holds it.
 * Returns nil when `address` holds it now, else the holder's address.
 */
export const EDGE_CLAIM = `
local holder = redis.call("GET", KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
return false
`;

/**
 * Edge liveness mark. KEYS: edgeAlive, edgeBuried. ARGV: ttl ms.
 * Sets (or renews) the mark unless the address was buried: 1 if renewed, 2 if it had to be
 * created (new, or gone with Redis' data), 0 if buried. Atomic with EDGE_BURY: an address is
 * either alive or buried, never both.
 */
export const EDGE_ALIVE = `
if redis.call("EXISTS", KEYS[2]) == 1 then return 0 end
local existed = redis.call("EXISTS", KEYS[1])
redis.call("SET", KEYS[1], "1", "PX", ARGV[1])
if existed == 1 then return 1 end
return 2
`;

/**
 * Burying a dead edge address. KEYS: edgeAlive, edgeBuried. ARGV: ttl ms of the tombstone.
 * 0 if the address is alive (a late heartbeat won), else 1 (buried now or before).
 */
export const EDGE_BURY = `
if redis.call("EXISTS", KEYS[1]) == 1 then return 0 end
redis.call("SET", KEYS[2], "1", "PX", ARGV[1])
return 1
`;

/**
 * The last step of recovering a dead edge's inbox. KEYS: edgeInbox, edgeReadCursor.
 * ARGV: the last entry id recovered. Deletes both keys if nothing was written after it, so
 * an entry can never slip in between the last read and the delete. 1 if deleted, else 0.
 */
export const EDGE_INBOX_DELETE_IF_DRAINED = `
if #redis.call("XRANGE", KEYS[1], "(" .. ARGV[1], "+", "COUNT", 1) > 0 then return 0 end
redis.call("DEL", KEYS[1], KEYS[2])
return 1
`;

/**
 * Directed-presence add. KEYS: directed, shardLease. ARGV: jid, max recipients, max bytes,
 * fencing token ("" for an unfenced write; otherwise an error "FENCED" unless the shard's lease
 * carries it, see FENCED_CALL). Adds the JID unless present, or unless the set would then hold more than `max recipients`
 * JIDs or more than `max bytes` bytes of them (Lua's # is the byte length). Returns 1 added,
 * 0 already present, -1 refused by a bound.
 */
export const DIRECTED_ADD = `
if ARGV[4] ~= "" and redis.call("HGET", KEYS[2], "token") ~= ARGV[4] then
  return redis.error_reply("FENCED " .. (redis.call("HGET", KEYS[2], "token") or ""))
end
if redis.call("SISMEMBER", KEYS[1], ARGV[1]) == 1 then return 0 end
local members = redis.call("SMEMBERS", KEYS[1])
if #members + 1 > tonumber(ARGV[2]) then return -1 end
local bytes = #ARGV[1]
for _, jid in ipairs(members) do bytes = bytes + #jid end
if bytes > tonumber(ARGV[3]) then return -1 end
redis.call("SADD", KEYS[1], ARGV[1])
return 1
`;

/**
 * XGROUP and XINFO with their stream named as a key. ioredis's cluster client finds no key in
 * them (its command table), so sent as they are they would go to any node; a script call is
 * routed by KEYS like every other command. KEYS: the stream. ARGV: command, subcommand, the
 * arguments after the key. Only these two commands.
 */
export const STREAM_ADMIN = `
if ARGV[1] ~= "XGROUP" and ARGV[1] ~= "XINFO" then
  return redis.error_reply("ERR STREAM_ADMIN runs XGROUP and XINFO only")
end
return redis.call(ARGV[1], ARGV[2], KEYS[1], unpack(ARGV, 3))
`;

/**
 * A write of shard state fenced by the shard's lease (shard-fence.ts). KEYS: shardLease, the
 * key written (under the same shard tag). ARGV: token, command, its arguments after the key.
 * Runs the command only while the lease carries `token`; otherwise an error "FENCED <live
 * token>" and nothing is written.
 */
export const FENCED_CALL = `
local live = redis.call("HGET", KEYS[1], "token")
if live ~= ARGV[1] then return redis.error_reply("FENCED " .. (live or "")) end
return redis.call(ARGV[2], KEYS[2], unpack(ARGV, 3))
`;

/**
 * Acquiring a shard lease. KEYS: shardLease, shardLeaseToken. ARGV: member, ttl ms.
 * Refuses (0) while any lease on the shard is live, even one held by the same member id (a
 * restarted process must not serve beside its paused predecessor). Otherwise takes the next
 * fencing token and sets the lease with a PX expiry, so Redis' clock alone decides when it
 * lapses. The token counter never expires; when it is missing (first use, or Redis lost its
 * data) it starts from Redis' time in microseconds, so a token is never handed out twice even
 * then (no script runs in under a microsecond, so the counter never gets ahead of the clock).
 * Such tokens stay below 2^53 (exact as doubles in Lua and JavaScript) until the year 2255;
 * they go through string.format("%d") because Lua prints large numbers as floats.
 * Returns the token, or 0.
 */
export const SHARD_LEASE_ACQUIRE = `
if redis.call("EXISTS", KEYS[1]) == 1 then return 0 end
if redis.call("EXISTS", KEYS[2]) == 0 then
  local now = redis.call("TIME")
  redis.call("SET", KEYS[2], string.format("%d", tonumber(now[1]) * 1000000 + tonumber(now[2])))
end
local token = string.format("%d", redis.call("INCR", KEYS[2]))
redis.call("HSET", KEYS[1], "member", ARGV[1], "token", token)
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return token
`;

/**
 * Renewing a shard lease. KEYS: shardLease. ARGV: token, ttl ms. Extends the expiry only while
 * the live lease carries `token` (a lapsed lease is lost even if nobody took it yet). 1 or 0.
 */
export const SHARD_LEASE_RENEW = `
if redis.call("HGET", KEYS[1], "token") ~= ARGV[1] then return 0 end
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return 1
`;

/** Releasing a shard lease. KEYS: shardLease. ARGV: token. Deletes it only if still ours. 1 or 0. */
export const SHARD_LEASE_RELEASE = `
if redis.call("HGET", KEYS[1], "token") ~= ARGV[1] then return 0 end
redis.call("DEL", KEYS[1])
return 1
`;

/**
 * The fencing check every fenced write of a shard starts with: KEYS[1] is the shard's lease,
 * ARGV[1] the writer's token. Unless the live lease carries that token (it lapsed, was
 * released, or another member holds a newer one), the script stops before writing anything
 * and replies {0, the live lease's token or ""}. Writes follow it in the same script, so no
 * other command runs between the check and the write.
 */
const FENCE = `
local live_token = redis.call("HGET", KEYS[1], "token")
if live_token ~= ARGV[1] then return {0, live_token or ""} end
`;

/**
 * Fenced snapshot writes of one shard or several, all or nothing, each with stanzas for its
 * XEP-0198 queues, frames for its connections' edges and the acknowledgement of inbox entries
 * (a unit of work whose snapshot is its last write: its acknowledgement rides with it). Several
 * shards, or any frames, only on one Redis server (those keys are in different cluster slots): a
 * unit that held other sessions' turns stores their states with its own in one step, and the
 * frames those states count go out in it too, so no member dying in between leaves a stanza
 * counted and queued but never written. For each shard in turn, KEYS: shardLease, snapshot,
 * shardInbox, then one smQueue key per queued stanza (all one tag, {s<N>}), then one edgeInbox
 * key per frame. ARGV: group, then for each shard its token, n, m, q, a, f, then n pairs of
 * connId and snapshot to store (replacing), m connIds whose snapshots to delete, q pairs of
 * sequence number and stanza (the i-th into the shard's i-th smQueue key), a entry ids to
 * acknowledge and f quadruples of connId, edge address, frame and origin ("" for none), the
 * i-th for the shard's i-th edgeInbox key. A frame is appended to its edge's inbox as the bus
 * writes it (a `data` packet, redis-bus.ts fieldsOf), never creating it (NOMKSTREAM): for an
 * edge that is gone it goes to the shard's inbox as `undelivered` instead (undelivered.ts), as
 * the bus's writer gives it back. Every lease is checked before anything is written: returns
 * {1, number acknowledged of each shard…} when done, or {0, the position of the first shard
 * whose lease is not the writer's (from 1), its live token or ""} (see FENCE), having written
 * nothing: the entries stay pending for the new owner.
 */
export const FENCED_SNAPSHOT_WRITE = `
local shards = {}
local k, a = 1, 2
while a <= #ARGV do
  local live_token = redis.call("HGET", KEYS[k], "token")
  if live_token ~= ARGV[a] then return {0, #shards + 1, live_token or ""} end
  local n, m, q = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local c, f = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  shards[#shards + 1] = {k, a + 6, n, m, q, c, f}
  k = k + 3 + q + f
  a = a + 6 + 2 * n + m + 2 * q + c + 4 * f
end
local replies = {1}
for _, shard in ipairs(shards) do
  local k, a, n, m, q, c, f = shard[1], shard[2], shard[3], shard[4], shard[5], shard[6], shard[7]
  for i = 0, n - 1 do redis.call("HSET", KEYS[k + 1], ARGV[a + 2 * i], ARGV[a + 1 + 2 * i]) end
  a = a + 2 * n
  for i = a, a + m - 1 do redis.call("HDEL", KEYS[k + 1], ARGV[i]) end
  a = a + m
  for i = 0, q - 1 do redis.call("HSET", KEYS[k + 3 + i], ARGV[a + 2 * i], ARGV[a + 1 + 2 * i]) end
  a = a + 2 * q
  local acked = 0
  for i = a, a + c - 1 do acked = acked + redis.call("XACK", KEYS[k + 2], ARGV[1], ARGV[i]) end
  a = a + c
  for i = 0, f - 1 do
    local conn, edge, frame, origin = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
    local stored
    if origin == "" then
      stored = redis.call("XADD", KEYS[k + 3 + q + i], "NOMKSTREAM", "*", "k", "data", "c", conn, "d", frame)
    else
      stored = redis.call("XADD", KEYS[k + 3 + q + i], "NOMKSTREAM", "*", "k", "data", "c", conn, "d", frame, "o", origin)
    end
    if not stored then
      redis.call("XADD", KEYS[k + 2], "*", "k", "undelivered", "c", conn, "e", edge, "d", frame)
    end
    a = a + 4
  end
  replies[#replies + 1] = acked
end
return replies
`;

/**
 * Fenced XACK. KEYS: shardLease, shardInbox. ARGV: token, group, entry ids.
 * Returns {1, number acknowledged} when done, {0, live token or ""} when fenced (see FENCE):
 * a fenced owner's entries stay pending for the new owner to claim.
 */
export const FENCED_XACK = `${FENCE}
local acked = 0
for i = 3, #ARGV do acked = acked + redis.call("XACK", KEYS[2], ARGV[2], ARGV[i]) end
return {1, acked}
`;

/**
 * Fenced XACK of several shards at once (one round trip for a turn's acknowledgements; one
 * Redis server only: the keys of different shards are in different cluster slots).
 * KEYS: shardLease, shardInbox of each shard in turn. ARGV: group, then for each shard its
 * token, the number n of its entry ids, and those n ids. Returns one reply per shard, in order,
 * as FENCED_XACK's: {1, number acknowledged} or {0, live token or ""} (that shard fenced, its
 * entries left pending; the others are acknowledged).
 */
export const FENCED_XACK_MANY = `
local results = {}
local a = 2
for k = 1, #KEYS, 2 do
  local token = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  local live_token = redis.call("HGET", KEYS[k], "token")
  if live_token ~= token then
    results[#results + 1] = {0, live_token or ""}
  else
    local acked = 0
    for i = a, a + n - 1 do acked = acked + redis.call("XACK", KEYS[k + 1], ARGV[1], ARGV[i]) end
    results[#results + 1] = {1, acked}
  end
  a = a + n
end
return results
`;

/**
 * Releasing a lock. KEYS: the lock. ARGV: the holder's token. Deletes it only if this holder
 * still has it (it may have expired and been taken by another). 1 if deleted, else 0.
 */
export const RELEASE_LOCK = `
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("DEL", KEYS[1])
return 1
`;

/**
 * Membership heartbeat. KEYS: members. ARGV: member id, ttl ms.
 * Reads the clock of the Redis server (TIME), so members whose clocks disagree still agree on
 * who expired; renews the member's expiry to now + ttl, drops every member whose expiry has
 * passed and returns the live member ids. Renewing, pruning and reading in one step means a
 * member never sees a set that lacks itself right after it renewed.
 */
export const MEMBERSHIP_HEARTBEAT = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
return redis.call("ZRANGE", KEYS[1], 0, -1)
`;

/**
 * FAST token issue (XEP-0484). KEYS: the pair's hash (keys.fastTokens). ARGV: token record
 * ("<expiresAtMs> <count> <mechanism> <hash>", see redis-fast-token-store.ts), its expiry ms.
 * Puts the record in the `fresh` slot (an unused fresh token is replaced) and makes the key
 * expire with the latest of the fresh and current tokens.
 */
export const FAST_TOKEN_ISSUE = `
local expiry = tonumber(ARGV[2])
local current = redis.call("HGET", KEYS[1], "current")
if current then
  local currentExpiry = tonumber(string.match(current, "^(%d+) "))
  if currentExpiry and currentExpiry > expiry then expiry = currentExpiry end
end
redis.call("HSET", KEYS[1], "fresh", ARGV[1])
redis.call("PEXPIREAT", KEYS[1], expiry)
return 1
`;

/**
 * FAST token use. KEYS: the pair's hash. ARGV: token hash, now ms, count ("" for none).
 * Finds the token in `fresh`, then `current`; refuses (0) one that has expired or whose count is
 * not above the highest accepted. Stores the new count; a fresh token becomes current (the old
 * current one is overwritten). The check and the writes must not interleave with another use of
 * the same token, or one count would be accepted twice. 1 if accepted.
 */
export const FAST_TOKEN_USE = `
for _, slot in ipairs({"fresh", "current"}) do
  local record = redis.call("HGET", KEYS[1], slot)
  if record then
    local expiry, count, mechanism, hash = string.match(record, "^(%d+) (%d+) (%S+) (%S+)$")
    if hash == ARGV[1] then
      if tonumber(expiry) <= tonumber(ARGV[2]) then return 0 end
      if ARGV[3] ~= "" then
        if tonumber(ARGV[3]) <= tonumber(count) then return 0 end
        count = ARGV[3]
      end
      if slot == "fresh" then redis.call("HDEL", KEYS[1], "fresh") end
      redis.call("HSET", KEYS[1], "current", expiry .. " " .. count .. " " .. mechanism .. " " .. hash)
      return 1
    end
  end
end
return 0
`;

/**
 * FAST token invalidate. KEYS: the pair's hash. ARGV: token hash. Deletes the slot holding that
 * token (the key goes with its last slot). 1 if one did.
 */
export const FAST_TOKEN_INVALIDATE = `
for _, slot in ipairs({"fresh", "current"}) do
  local record = redis.call("HGET", KEYS[1], slot)
  if record and string.match(record, " (%S+)$") == ARGV[1] then
    redis.call("HDEL", KEYS[1], slot)
    return 1
  end
end
return 0
`;
