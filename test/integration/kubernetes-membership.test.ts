// The kubernetes Membership backend against the list/watch protocol. NO KUBERNETES CLUSTER IS
// INVOLVED: each test starts a fake API server (test/helpers/fake-kube-api.ts), a local HTTP
// server that speaks the real list/watch protocol for EndpointSlices, and plays the kubelet and
// the EndpointSlice controller by changing the slices itself. The backend under test is the
// real one (a @kubernetes/client-node informer over HTTP). What is checked here is what the
// membership contract cannot say: members go when their endpoint turns unready, terminates or
// is deleted, with no ttl; a broken watch resumes from its resourceVersion; a 410 relists; an
// API server that cannot be reached leaves the view as it was, reported stale.
import assert from "node:assert/strict";
import { delay } from "../../services/shared/async/delay.js";
import { silentLogger } from "../../services/shared/log.js";
import {
  KubernetesMembership,
  SERVICE_NAME_LABEL,
  type KubernetesMembershipOptions,
} from "../../services/shared/membership/kubernetes-membership.js";
import { FakeKubeApi, type FakeEndpoint } from "../helpers/fake-kube-api.js";
import { LogCapture } from "../helpers/log-capture.js";
import { until } from "../helpers/poll.js";
import { report } from "../helpers/report.js";

const NS = "megaphone";
const SERVICE = "megaphone-session";
/** "At once": a change must reach members() within this, not after any lease or ttl. */
const AT_ONCE_MS = 1000;

/** Records every set a member was notified of. */
function watch(m: KubernetesMembership): string[][] {
  const seen: string[][] = [];
  m.onChange((members) => seen.push([...members]));
  return seen;
}

/** Resolves once `m`'s view is `expected` (awaiting its notifications); ms it took. */
async function viewBecomes(
  m: KubernetesMembership,
  expected: string[],
  timeoutMs = AT_ONCE_MS,
): Promise<number> {
  const started = performance.now();
  const same = () => JSON.stringify(m.members()) === JSON.stringify(expected);
  if (same()) return 0;
  let unsubscribe = () => {};
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      unsubscribe = m.onChange(() => same() && resolve());
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `view ${JSON.stringify(m.members())}, not ${JSON.stringify(expected)}, after ${timeoutMs} ms`,
            ),
          ),
        timeoutMs,
      );
    });
  } finally {
    unsubscribe();
    clearTimeout(timer);
  }
  return Math.round(performance.now() - started);
}

const ready = (...pods: string[]): FakeEndpoint[] => pods.map((pod) => ({ pod, ready: true }));

describe("KubernetesMembership (a fake API server, no cluster)", function () {
  let api: FakeKubeApi;
  let created: KubernetesMembership[];
  beforeEach(async () => {
    api = await FakeKubeApi.start();
    created = [];
  });
  afterEach(async () => {
    await Promise.all(created.map((m) => m.close()));
    await api.stop();
  });

  function member(
    options: Partial<KubernetesMembershipOptions> = {},
    log = silentLogger,
  ): KubernetesMembership {
    const m = new KubernetesMembership(
      { namespace: NS, serviceName: SERVICE, kubeConfig: api.kubeConfig(), ...options },
      log,
    );
    created.push(m);
    return m;
  }

  it("lists and watches only its Service's slices in its namespace", async () => {
    api.putSlice(NS, "s1", SERVICE, ready("a"));
    api.putSlice(NS, "other", "another-service", ready("x"));
    api.putSlice("elsewhere", "s1", SERVICE, ready("y"));
    const m = member();
    await m.join("a");
    assert.deepEqual(m.members(), ["a"]);
    const selector = `${SERVICE_NAME_LABEL}=${SERVICE}`;
    assert.deepEqual(
      api.requests.map((r) => [r.namespace, r.watch, r.labelSelector, r.resourceVersion]),
      [
        [NS, false, selector, undefined],
        [NS, true, selector, api.resourceVersion()],
      ],
    );
  });

  it("joins after the first list without waiting for its own pod to be ready, and takes it in once ready", async () => {
    api.putSlice(NS, "s1", SERVICE, [
      { pod: "a", ready: true },
      { pod: "b", ready: false },
    ]);
    const b = member();
    const seen = watch(b);
    await b.join("b");
    // A pod turns ready only after its readiness probe passes: until then it owns no shard.
    assert.deepEqual(b.members(), ["a"]);
    api.putSlice(NS, "s1", SERVICE, ready("a", "b"));
    const ms = await viewBecomes(b, ["a", "b"]);
    report(`own pod seen ready after ${ms} ms`);
    assert.deepEqual(seen, [["a"], ["a", "b"]]);
  });

  it("drops a pod that turns unready, and one that starts terminating, at once (no ttl)", async () => {
    api.putSlice(NS, "s1", SERVICE, ready("a", "b", "c"));
    const a = member();
    await a.join("a");
    assert.deepEqual(a.members(), ["a", "b", "c"]);
    const seen = watch(a);
    api.putSlice(NS, "s1", SERVICE, [
      { pod: "a", ready: true },
      { pod: "b", ready: false },
      { pod: "c", ready: true },
    ]);
    const unreadyMs = await viewBecomes(a, ["a", "c"]);
    // A Service with publishNotReadyAddresses keeps a terminating endpoint "ready".
    api.putSlice(NS, "s1", SERVICE, [
      { pod: "a", ready: true },
      { pod: "b", ready: false },
      { pod: "c", ready: true, terminating: true },
    ]);
    const terminatingMs = await viewBecomes(a, ["a"]);
    report(`unready pod gone after ${unreadyMs} ms, terminating pod after ${terminatingMs} ms`);
    assert.deepEqual(seen, [["a", "c"], ["a"]]);
  });

  it("takes an endpoint without a ready condition as ready, only Pod endpoints, each pod once across slices", async () => {
    api.putSlice(NS, "ipv4", SERVICE, [
      { pod: "b" },
      { pod: "a", ready: true },
      { pod: "node-1", kind: "Node", ready: true },
    ]);
    // Dual-stack: the same pods again in the IPv6 slice.
    api.putSlice(NS, "ipv6", SERVICE, [{ pod: "a", ready: true }, { pod: "c" }]);
    const m = member();
    await m.join("a");
    assert.deepEqual(m.members(), ["a", "b", "c"]);
  });

  it("drops the pods of a deleted slice and a removed endpoint", async () => {
    api.putSlice(NS, "s1", SERVICE, ready("a", "b"));
    api.putSlice(NS, "s2", SERVICE, ready("c", "d"));
    const a = member();
    await a.join("a");
    const seen = watch(a);
    api.deleteSlice(NS, "s2");
    const deletedMs = await viewBecomes(a, ["a", "b"]);
    api.putSlice(NS, "s1", SERVICE, ready("a"));
    const removedMs = await viewBecomes(a, ["a"]);
    report(
      `deleted slice's pods gone after ${deletedMs} ms, removed endpoint after ${removedMs} ms`,
    );
    assert.deepEqual(seen, [["a", "b"], ["a"]]);
  });

  it("resumes a broken watch from its last resourceVersion, and sees a change made while it was broken", async () => {
    api.putSlice(NS, "s1", SERVICE, ready("a", "b"));
    const a = member();
    await a.join("a");
    const seen = watch(a);
    // A change seen through the watch moves the resourceVersion past the list's.
    const lastSeen = api.putSlice(NS, "s1", SERVICE, ready("a", "b", "c"));
    await viewBecomes(a, ["a", "b", "c"]);
    // The cut lasts: the server refuses while the change is made, so only a resumed watch sees it.
    api.refuseWith(503);
    assert.equal(api.breakWatches(), 1);
    api.putSlice(NS, "s1", SERVICE, ready("a", "c"));
    await until(() => api.watchRequests().some((r) => r.status === 503), "a refused rewatch");
    api.refuseWith(undefined);
    const ms = await viewBecomes(a, ["a", "c"], 5000);
    const rewatches = api.watchRequests().slice(1);
    report(
      `change made while broken seen ${ms} ms after the server came back; ${rewatches.length} rewatches (${rewatches.filter((r) => r.status === 503).length} refused)`,
    );
    assert.deepEqual(
      rewatches.map((r) => r.resourceVersion),
      rewatches.map(() => lastSeen),
      "every rewatch resumes from the last resourceVersion seen",
    );
    assert.equal(api.listRequests().length, 1, "no relist");
    assert.equal(api.openWatches(), 1);
    assert.deepEqual(seen, [
      ["a", "b", "c"],
      ["a", "c"],
    ]);
    assert.equal(a.staleForMs(), 0);
  });

  it("rewatches from its resourceVersion when the server ends the watch (the watch timeout)", async () => {
    api.putSlice(NS, "s1", SERVICE, ready("a"));
    const a = member();
    await a.join("a");
    const seen = watch(a);
    const lastSeen = api.putSlice(NS, "s1", SERVICE, ready("a", "b"));
    await viewBecomes(a, ["a", "b"]);
    assert.equal(api.endWatches(), 1);
    await until(() => api.openWatches() === 1, "the rewatch");
    api.putSlice(NS, "s1", SERVICE, ready("b"));
    await viewBecomes(a, ["b"]);
    assert.deepEqual(
      api.requests.slice(2).map((r) => [r.watch, r.resourceVersion]),
      [[true, lastSeen]],
    );
    assert.deepEqual(seen, [["a", "b"], ["b"]]);
  });

  for (const answer of ["event", "status"] as const) {
    it(`relists after 410 Gone (${answer === "event" ? "an ERROR event in the watch" : "an HTTP 410"}) and has the right view afterwards`, async () => {
      api.expiredAnswer = answer;
      api.putSlice(NS, "s1", SERVICE, ready("a", "b"));
      const a = member();
      await a.join("a");
      const seen = watch(a);
      const listed = api.resourceVersion();
      api.refuseWith(503);
      api.breakWatches();
      api.putSlice(NS, "s1", SERVICE, ready("a"));
      api.putSlice(NS, "s2", SERVICE, ready("c"));
      api.expireHistory();
      await until(() => api.watchRequests().some((r) => r.status === 503), "a refused rewatch");
      api.refuseWith(undefined);
      await viewBecomes(a, ["a", "c"], 5000);
      // The relist updates the view; the watch from its version follows.
      await until(() => api.openWatches() === 1, "the watch after the relist");
      const after = api.requests.filter((r) => r.status !== 503).slice(2);
      assert.deepEqual(
        after.map((r) => [r.watch, r.resourceVersion, r.status]),
        [
          [true, listed, answer === "event" ? 200 : 410],
          [false, undefined, 200],
          [true, api.resourceVersion(), 200],
        ],
        "the expired watch, the relist, the watch from the relist's version",
      );
      assert.deepEqual(seen, [["a", "c"]]);
      // The watch from the relist goes on working.
      api.putSlice(NS, "s2", SERVICE, ready("c", "d"));
      await viewBecomes(a, ["a", "c", "d"]);
    });
  }

  it("never notifies for an unchanged set: slice edits, a resumed watch, a relist moving a pod between slices", async () => {
    api.putSlice(NS, "s1", SERVICE, ready("a", "b"));
    api.putSlice(NS, "s2", SERVICE, ready("c"));
    const a = member();
    await a.join("a");
    const seen = watch(a);
    // Edits the set does not see: a not-ready endpoint, a non-Pod endpoint, a terminating one.
    api.putSlice(NS, "s1", SERVICE, [...ready("a", "b"), { pod: "x", ready: false }]);
    api.putSlice(NS, "s2", SERVICE, [...ready("c"), { pod: "n", kind: "Node" }]);
    api.putSlice(NS, "s2", SERVICE, [...ready("c"), { pod: "t", terminating: true }]);
    const marker = api.putSlice(NS, "s3", SERVICE, []);
    await until(() => a.lastResourceVersion() === marker, "the edits to be seen");
    // A cut and a resumed watch.
    api.breakWatches();
    await until(
      () => api.watchRequests().filter((r) => r.resourceVersion === marker).length === 1,
      "the resumed watch",
    );
    // A relist in which pod b moved from s1 to s3: deleted then added within one relist.
    api.refuseWith(503);
    api.breakWatches();
    api.putSlice(NS, "s1", SERVICE, ready("a"));
    api.putSlice(NS, "s3", SERVICE, ready("b"));
    api.expireHistory();
    await until(() => api.watchRequests().some((r) => r.status === 503), "a refused rewatch");
    api.refuseWith(undefined);
    await until(() => api.listRequests().length === 2, "the relist", 5000);
    const last = api.putSlice(NS, "s4", SERVICE, ready("d"));
    await viewBecomes(a, ["a", "b", "c", "d"]);
    assert.equal(api.watchRequests().at(-1)?.resourceVersion, String(Number(last) - 1));
    assert.deepEqual(seen, [["a", "b", "c", "d"]], "only the last change was a change");
  });

  it("keeps its view while the API server refuses, retries with backoff, reports it stale, and catches up", async () => {
    const capture = new LogCapture("warn");
    api.putSlice(NS, "s1", SERVICE, ready("a", "b"));
    const a = member({ staleAfterMs: 300 }, capture.logger);
    await a.join("a");
    const seen = watch(a);
    api.refuseWith(503);
    const cut = performance.now();
    api.breakWatches();
    api.putSlice(NS, "s1", SERVICE, ready("a"));
    const staleMsg =
      "kubernetes membership: cannot watch EndpointSlices; keeping the last member view, which may be stale";
    await capture.waitFor(staleMsg, 1, 5000);
    const outageMs = performance.now() - cut;
    assert.ok(a.staleForMs() >= 300, `stale for ${a.staleForMs()} ms`);
    assert.deepEqual(a.members(), ["a", "b"], "the last view is kept, not emptied");
    const attempts = api.watchRequests().filter((r) => r.status === 503).length;
    // Backoff 100, 200, 400 ms...: a handful of attempts, not a busy loop.
    report(`${attempts} refused rewatches in ${Math.round(outageMs)} ms before the view was stale`);
    assert.ok(attempts >= 2 && attempts <= 6, `${attempts} attempts`);
    assert.equal(capture.withMessage(staleMsg).length, 1, "stale logged once");
    api.refuseWith(undefined);
    await viewBecomes(a, ["a"], 5000);
    assert.equal(a.staleForMs(), 0);
    assert.deepEqual(seen, [["a"]]);
  });

  it("fails join within syncTimeoutMs when the API server refuses, naming the cause, and stops trying", async () => {
    api.putSlice(NS, "s1", SERVICE, ready("a"));
    api.refuseWith(403);
    const a = member({ syncTimeoutMs: 500 });
    const started = performance.now();
    await assert.rejects(a.join("a"), (err: Error) => {
      assert.match(err.message, /megaphone-session in namespace megaphone within 500 ms/);
      assert.match(err.message, /needs get, list and watch on endpointslices/);
      return true;
    });
    const ms = performance.now() - started;
    // Node's timers count whole milliseconds on a clock of their own: one set for 500 ms may
    // fire at 499.9 by performance.now() (seen in CI), so the lower bound allows 1 ms.
    assert.ok(ms >= 499 && ms < 500 + AT_ONCE_MS, `rejected after ${ms} ms`);
    assert.deepEqual(a.members(), []);
    const tried = api.requests.length;
    assert.ok(tried >= 2, `${tried} attempts`);
    api.refuseWith(undefined);
    await delay(500);
    assert.equal(api.requests.length, tried, "no attempt after join failed");
  });

  it("leave() empties the view and stops watching; close() stops watching and keeps the view", async () => {
    api.putSlice(NS, "s1", SERVICE, ready("a", "b"));
    const a = member();
    const b = member();
    await a.join("a");
    await b.join("b");
    const seenByA = watch(a);
    const seenByB = watch(b);
    await b.leave();
    assert.deepEqual(b.members(), []);
    assert.deepEqual(seenByB, [[]]);
    await a.close();
    assert.deepEqual(a.members(), ["a", "b"]);
    await until(() => api.openWatches() === 0, "both watches to end");
    const requests = api.requests.length;
    api.putSlice(NS, "s1", SERVICE, ready("a"));
    api.breakWatches();
    await delay(300);
    assert.equal(api.requests.length, requests, "no list or watch after leave and close");
    assert.deepEqual(a.members(), ["a", "b"]);
    assert.deepEqual(seenByA, []);
    assert.deepEqual(seenByB, [[]]);
  });

  it("closing during the first list leaves no watch behind", async () => {
    api.putSlice(NS, "s1", SERVICE, ready("a"));
    api.refuseWith(503);
    const a = member({ syncTimeoutMs: 5000 });
    const joining = a.join("a");
    await until(() => api.requests.length >= 1, "a first attempt");
    await a.close();
    await assert.rejects(joining, /closed before its first list/);
    api.refuseWith(undefined);
    await delay(300);
    assert.equal(api.openWatches(), 0);
    assert.ok(api.requests.every((r) => r.status === 503));
  });
});
