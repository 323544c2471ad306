// MEGAPHONE_TEST_ONLY_IMPL=memory|redis|redis-cluster|kubernetes narrows contract suites to one
// implementation (redis-cluster: the Redis implementations on a Redis Cluster).
export function onlyImpl(impl: "memory" | "redis" | "redis-cluster" | "kubernetes"): boolean {
  const only = process.env.MEGAPHONE_TEST_ONLY_IMPL;
  return !only || only === impl;
}
