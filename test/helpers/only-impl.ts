// MEGAPHONE_TEST_ONLY_IMPL=memory|redis|kubernetes narrows contract suites to one implementation.
export function onlyImpl(impl: "memory" | "redis" | "kubernetes"): boolean {
  const only = process.env.MEGAPHONE_TEST_ONLY_IMPL;
  return !only || only === impl;
}
