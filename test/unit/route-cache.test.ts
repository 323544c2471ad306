// RouteCache (services/session/io/route-cache.ts): what it keeps, and that it stays bounded.
import assert from "node:assert/strict";
import type { VersionedBindings } from "../../services/shared/stores/route/route-store.js";
import { RouteCache } from "../../services/session/io/route-cache.js";

const bindings = (version: string): VersionedBindings => ({
  version,
  resources: [
    { resource: "phone", connId: "e1.0.1", priority: 0, available: true, interested: true },
  ],
});

describe("RouteCache", () => {
  it("keeps what a read returned, and forgets it when told", () => {
    const cache = new RouteCache(10);
    cache.remember("bob@x", bindings("v1"));
    assert.deepEqual(cache.get("bob@x"), bindings("v1"));
    cache.remember("bob@x", bindings("v2"));
    assert.equal(cache.get("bob@x")?.version, "v2");
    cache.forget("bob@x");
    assert.equal(cache.get("bob@x"), undefined);
  });

  it("keeps nothing without a version: nothing could check it", () => {
    const cache = new RouteCache(10);
    cache.remember("bob@x", { version: "", resources: [] });
    assert.equal(cache.get("bob@x"), undefined);
    assert.equal(cache.size, 0);
  });

  it("holds at most maxEntries, dropping the one stored longest ago", () => {
    const cache = new RouteCache(3);
    for (const user of ["a", "b", "c"]) cache.remember(user, bindings(`v-${user}`));
    cache.remember("a", bindings("v-a2")); // stored again: now the newest
    cache.remember("d", bindings("v-d"));
    assert.equal(cache.size, 3);
    assert.equal(cache.get("b"), undefined);
    assert.deepEqual(
      ["a", "c", "d"].map((u) => cache.get(u)?.version),
      ["v-a2", "v-c", "v-d"],
    );
    for (let i = 0; i < 1000; i++) cache.remember(`u${i}`, bindings(`v${i}`));
    assert.equal(cache.size, 3);
  });

  it("keeps nothing at maxEntries 0", () => {
    const cache = new RouteCache(0);
    cache.remember("bob@x", bindings("v1"));
    assert.equal(cache.get("bob@x"), undefined);
  });
});
