// Which failures are the store's (Redis unreachable, read-only, out of memory, loading, or a
// Redis Cluster without a reachable node for the slot) rather than the code's. A store failure
// must fail the whole batch so the bus delivers it again; it must never be turned into a
// stanza error and acknowledged, which would lose the stanza.
// FencedError: a write refused because this member lost the shard's lease; the batch must fail
// (and stay pending for the new owner) just the same.
const STORE_ERROR_NAMES = new Set([
  "ReplyError",
  "MaxRetriesPerRequestError",
  "AbortError",
  "FencedError",
  "ClusterAllFailedError",
]);
const STORE_ERROR_MESSAGES = [
  /Connection is closed/,
  /Stream isn't writeable/,
  /ECONNREFUSED/,
  // ioredis Cluster, while nodes are unreachable or the slot map is being refreshed (and
  // ClusterAllFailedError above, when no node answered for the slot map).
  /Cluster is disconnect/,
  /Cluster isn't ready/,
  /Too many Cluster redirections/,
  /None of startup nodes is available/,
  /Node is disconnected/,
];

export function isStoreError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return STORE_ERROR_NAMES.has(err.name) || STORE_ERROR_MESSAGES.some((re) => re.test(err.message));
}
