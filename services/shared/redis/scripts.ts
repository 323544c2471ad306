// Lua source of every script that must be atomic across commands (STYLE 2.13). They live in
// TypeScript rather than in .lua files because the build copies only compiled .js into dist/,
// so a .lua file read at runtime would be missing from a shipped image. `script-commands.ts`
// loads them once per client with `defineCommand`. Each script touches the keys of one user
// only, so all its KEYS share one hash tag and one Redis Cluster slot.
//
// Redis Lua notes: HGET on a missing field returns false (not nil); returning false replies nil.

/**
 * Roster setItem. KEYS: roster, rosterVersion. ARGV: contact, item JSON.
 * Writes the item and bumps the version together, so no reader sees one without the other.
 * Returns the new version (integer).
 */
export const ROSTER_SET_ITEM = `
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
return redis.call("INCR", KEYS[2])
`;

/**
 * Roster removeItem. KEYS: roster, rosterVersion. ARGV: contact.
 * Bumps the version only when an item was removed. Returns the new version, or nil.
 */
export const ROSTER_REMOVE_ITEM = `
if redis.call("HDEL", KEYS[1], ARGV[1]) == 0 then return false end
return redis.call("INCR", KEYS[2])
`;

/**
 * Route bind. KEYS: resources. ARGV: resource, binding JSON.
 * Replaces the binding and returns the connId that held the resource before, or nil.
 */
export const ROUTE_BIND = `
local previous = redis.call("HGET", KEYS[1], ARGV[1])
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
if previous then return cjson.decode(previous).connId end
return false
`;

/**
 * Route update. KEYS: resources. ARGV: resource, connId, patch JSON.
 * Merges the patch (a JSON null removes the field) only while `connId` still holds the
 * resource, so a closing connection cannot overwrite its successor. Returns 1 or 0.
 */
export const ROUTE_UPDATE = `
local current = redis.call("HGET", KEYS[1], ARGV[1])
if not current then return 0 end
local binding = cjson.decode(current)
if binding.connId ~= ARGV[2] then return 0 end
for field, value in pairs(cjson.decode(ARGV[3])) do
  if value == cjson.null then binding[field] = nil else binding[field] = value end
end
redis.call("HSET", KEYS[1], ARGV[1], cjson.encode(binding))
return 1
`;

/**
 * Route unbind. KEYS: resources. ARGV: resource, connId.
 * Compare-and-delete: removes the binding only while `connId` holds it. Returns 1 or 0.
 */
export const ROUTE_UNBIND = `
local current = redis.call("HGET", KEYS[1], ARGV[1])
if not current or cjson.decode(current).connId ~= ARGV[2] then return 0 end
return redis.call("HDEL", KEYS[1], ARGV[1])
`;

/**
 * Offline push. KEYS: offline. ARGV: max stanzas, stanza XML.
 * Appends unless the queue already holds `max`; the check and the append must not interleave
 * with other pushes or the bound would be overshot. Returns 1 if appended, else 0.
 */
export const OFFLINE_PUSH = `
if redis.call("LLEN", KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call("RPUSH", KEYS[1], ARGV[2])
return 1
`;
