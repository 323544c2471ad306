// Session members from Kubernetes: the live members are the pods behind the session Service
// whose endpoints are ready, read from its EndpointSlices (label kubernetes.io/service-name)
// with a @kubernetes/client-node informer (list, then watch from the list's resourceVersion).
// Nobody heartbeats: the kubelet's readiness probe and the EndpointSlice controller decide, so a
// pod that is deleted, starts terminating or turns unready leaves every member's view as soon
// as the watch delivers the change (well under a second), not after a lease timeout.
//
// A member id is the pod's name. The pod gets it, and its namespace, from the downward API:
//   env: POD_NAME ← fieldRef metadata.name; POD_NAMESPACE ← fieldRef metadata.namespace
// and its ServiceAccount needs get, list and watch on endpointslices (group discovery.k8s.io)
// in that namespace (a Role and RoleBinding; nothing cluster-wide).
//
// A member is an endpoint whose targetRef is a Pod, whose conditions.ready is true or absent
// (the API says nil means ready) and whose conditions.terminating is not true (a Service with
// publishNotReadyAddresses reports terminating endpoints as ready), in any slice of the Service
// (one per address family on dual-stack clusters, more past 100 endpoints): the union, once each.
//
// Choices, where this backend differs from the heartbeat ones (membership.ts):
// - join() resolves once the first list has been read and the watch is open; it does NOT wait
//   for the pod's own endpoint to be ready. A pod is ready only after its readiness probe
//   passes, which it may well not do before it has joined, so waiting could deadlock a start.
//   The member owns shards once its own id appears in members() (onChange says when).
//   join() rejects when that first list has not succeeded within syncTimeoutMs (RBAC missing,
//   API server unreachable), naming the last error, so a misconfigured pod fails at start.
// - leave() empties this member's view and stops watching; it cannot take the pod out of the
//   others' views (that needs no API write and no RBAC: the pod leaves when its readiness
//   fails or it is deleted). A draining session fails its readiness first.
// - close() stops watching and keeps the view, like a crash: the others drop this pod when the
//   kubelet sees it dead or unready, not on a ttl.
// - A list or watch that fails is restarted with backoff (100 ms doubling to 5 s, until
//   leave/close). A broken watch resumes from the last resourceVersion seen (the informer
//   keeps it); a 410 Gone (history compacted) makes the informer relist.
// - While the watch cannot be re-established the view is kept, NOT emptied: unlike a missed
//   heartbeat, this pod being unable to reach the API server does not make the others drop it
//   (they drop it only if its readiness fails), so keeping its shards matches what the others
//   compute, and shard leases still keep two members off one shard. The price: a change made
//   meanwhile (a member gone) is seen only when the watch is back. Past staleAfterMs broken,
//   an error is logged (at the first failed retry past it) and staleForMs() says how long, for
//   a metric; not for readiness, since an API server outage would then empty the Service.
// - A watch request that hangs before its response headers (a black-holed connection) is
//   bounded only by the OS's TCP timeouts; a list is bounded by listTimeoutMs.
import {
  DiscoveryV1Api,
  KubeConfig,
  ListWatch,
  Watch,
  type V1EndpointSlice,
  type V1EndpointSliceList,
} from "@kubernetes/client-node";
import { retryDelayMs, settlesWithin } from "../async/delay.js";
import type { Logger } from "../log.js";
import type { Membership, MembershipListener } from "./membership.js";
import { MembershipView } from "./membership-view.js";

/** The label the EndpointSlice controller puts on every slice of a Service. */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

export interface KubernetesMembershipOptions {
  /** The namespace of the session Service and its pods (the pod's POD_NAMESPACE). */
  namespace: string;
  /** The session Service whose ready endpoints are the members. */
  serviceName: string;
  /** Where the API server is and how to authenticate; default: the pod's ServiceAccount. */
  kubeConfig?: KubeConfig;
  /** join() fails when the first list has not succeeded within this, ms. */
  syncTimeoutMs?: number;
  /** A watch broken this long makes the view stale: logged at error, shown by staleForMs(), ms. */
  staleAfterMs?: number;
  /** A list request that has not answered within this has failed (and is retried), ms. */
  listTimeoutMs?: number;
}

export const KUBERNETES_MEMBERSHIP_DEFAULTS = {
  syncTimeoutMs: 30_000,
  staleAfterMs: 15_000,
  listTimeoutMs: 10_000,
};

/** The wiring entry point: the pod's ServiceAccount unless `options.kubeConfig` says otherwise. */
export function createKubernetesMembership(
  options: KubernetesMembershipOptions,
  log: Logger,
): KubernetesMembership {
  return new KubernetesMembership(options, log);
}

/** The ready pods behind a Service, from its slices: sorted, once each. */
export function readyPods(slices: Iterable<V1EndpointSlice>): string[] {
  const pods = new Set<string>();
  for (const slice of slices)
    for (const endpoint of slice.endpoints ?? []) {
      const { targetRef, conditions } = endpoint;
      if (targetRef?.kind !== "Pod" || !targetRef.name) continue;
      if (conditions?.ready === false || conditions?.terminating === true) continue;
      pods.add(targetRef.name);
    }
  return [...pods].sort();
}

/**
 * The informer's Watch, except that a watch established after stop() is aborted at once: the
 * informer checks for stop() only before it lists, so a stop() during a list or while the
 * watch request is in flight would otherwise leave a watch running.
 */
class StoppableWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly stopped: () => boolean,
  ) {
    super(config);
  }

  override async watch(...args: Parameters<Watch["watch"]>): Promise<AbortController> {
    const controller = await super.watch(...args);
    if (this.stopped()) controller.abort();
    return controller;
  }
}

type State = "new" | "joined" | "stopped";

export class KubernetesMembership implements Membership {
  private readonly settings: Required<Omit<KubernetesMembershipOptions, "kubeConfig">>;
  private readonly view = new MembershipView((err) =>
    this.log.error({ err }, "membership listener failed"),
  );
  private readonly informer: ListWatch<V1EndpointSlice>;
  private state: State = "new";
  private memberId = "";
  private selfListed = false;
  /** Failed list/watch attempts since the last success. */
  private failures = 0;
  private lastError: unknown;
  /** When (performance.now()) the watch broke; undefined while it works. */
  private brokenSince: number | undefined;
  private staleLogged = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;
  private refreshQueued = false;
  private synced = false;
  private onSynced: () => void = () => {};

  constructor(
    options: KubernetesMembershipOptions,
    private readonly log: Logger,
  ) {
    if (!options.namespace || !options.serviceName)
      throw new Error("the kubernetes membership needs a namespace and a session Service name");
    this.settings = {
      namespace: options.namespace,
      serviceName: options.serviceName,
      syncTimeoutMs: options.syncTimeoutMs ?? KUBERNETES_MEMBERSHIP_DEFAULTS.syncTimeoutMs,
      staleAfterMs: options.staleAfterMs ?? KUBERNETES_MEMBERSHIP_DEFAULTS.staleAfterMs,
      listTimeoutMs: options.listTimeoutMs ?? KUBERNETES_MEMBERSHIP_DEFAULTS.listTimeoutMs,
    };
    const kubeConfig = options.kubeConfig ?? inClusterConfig();
    const api = kubeConfig.makeApiClient(DiscoveryV1Api);
    const labelSelector = `${SERVICE_NAME_LABEL}=${options.serviceName}`;
    const list = async (): Promise<V1EndpointSliceList> => {
      const listed = await timeBound(
        api.listNamespacedEndpointSlice({ namespace: options.namespace, labelSelector }),
        this.settings.listTimeoutMs,
        "listing EndpointSlices",
      );
      // The informer would go on to watch: a stopped member must not.
      if (this.state !== "joined") throw new Error("membership stopped while listing");
      return listed;
    };
    this.informer = new ListWatch<V1EndpointSlice>(
      `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(options.namespace)}/endpointslices`,
      new StoppableWatch(kubeConfig, () => this.state !== "joined"),
      list,
      false,
      labelSelector,
    );
    // A relist calls back once per object, deleted ones first: the view is recomputed once
    // those callbacks are done, so a pod that moved between slices meanwhile is not seen
    // leaving and coming back. (Two watch events are two changes, as the API server made them.)
    this.informer.on("change", () => this.scheduleRefresh());
    this.informer.on("error", (err) => this.failed(err));
  }

  async join(memberId: string): Promise<void> {
    if (memberId === "") throw new Error("a member id must not be empty");
    if (this.state !== "new") throw new Error("a Membership instance joins once");
    this.state = "joined";
    this.memberId = memberId;
    const synced = new Promise<void>((resolve) => (this.onSynced = resolve));
    this.restart();
    await settlesWithin(synced, this.settings.syncTimeoutMs);
    if (this.synced) return;
    // Not synced: either leave()/close() came first, or the API server never answered.
    const closed = !this.watching();
    await this.stopWatching();
    if (closed) throw new Error("the kubernetes membership was closed before its first list");
    throw new Error(
      `could not list the EndpointSlices of Service ${this.settings.serviceName} in namespace ${this.settings.namespace} within ${this.settings.syncTimeoutMs} ms: ${describe(this.lastError)}`,
    );
  }

  members(): readonly string[] {
    return this.view.members();
  }

  onChange(listener: MembershipListener): () => void {
    return this.view.onChange(listener);
  }

  async leave(): Promise<void> {
    await this.stopWatching();
    this.view.set([]);
  }

  async close(): Promise<void> {
    await this.stopWatching();
  }

  /** The resourceVersion of the last list or watch event seen (where a resumed watch starts). */
  lastResourceVersion(): string {
    return this.informer.latestResourceVersion();
  }

  /** Joined and not stopped: the informer should be running. */
  private watching(): boolean {
    return this.state === "joined";
  }

  /** How long the watch has been broken (the view possibly stale), ms; 0 while it works. */
  staleForMs(): number {
    return this.brokenSince === undefined ? 0 : performance.now() - this.brokenSince;
  }

  private async stopWatching(): Promise<void> {
    this.state = "stopped";
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.onSynced();
    await this.informer.stop();
    // A start in flight ends without a watch (see StoppableWatch and list); let it finish so
    // nothing of this member is still running once close() returns, but not for ever.
    if (this.starting) await settlesWithin(this.starting, this.settings.listTimeoutMs);
  }

  /** (Re)starts the informer: a list unless it holds a resourceVersion, then the watch. */
  private restart(): void {
    this.retryTimer = undefined;
    if (this.state !== "joined") return;
    const starting = this.start();
    this.starting = starting;
    starting
      // The informer reports list and watch failures through its error callback; anything it
      // throws instead is a failure like them, retried the same way.
      .catch((err: unknown) => this.failed(err))
      .finally(() => {
        if (this.starting === starting) this.starting = undefined;
      });
  }

  private async start(): Promise<void> {
    const failuresBefore = this.failures;
    // The informer reports a failed list or watch through its error callback and resolves.
    await this.informer.start();
    if (this.state !== "joined" || this.failures !== failuresBefore) return;
    if (this.brokenSince !== undefined)
      this.log.info(
        { brokenMs: Math.round(this.staleForMs()) },
        "kubernetes membership: watching EndpointSlices again",
      );
    this.failures = 0;
    this.brokenSince = undefined;
    this.staleLogged = false;
    this.refresh();
    this.synced = true;
    this.onSynced();
  }

  private failed(err: unknown): void {
    // Stopping aborts the watch, which the informer reports as an error too.
    if (this.state !== "joined") return;
    this.failures++;
    this.lastError = err;
    this.brokenSince ??= performance.now();
    const staleMs = Math.round(this.staleForMs());
    this.log.warn(
      { err, failures: this.failures, staleMs },
      "kubernetes membership: EndpointSlice list or watch failed; retrying",
    );
    if (!this.staleLogged && staleMs >= this.settings.staleAfterMs) {
      this.staleLogged = true;
      this.log.error(
        { err, staleMs, members: this.view.members() },
        "kubernetes membership: cannot watch EndpointSlices; keeping the last member view, which may be stale",
      );
    }
    // One retry pending at a time; a later failure of the same attempt adds none.
    this.retryTimer ??= setTimeout(() => this.restart(), retryDelayMs(this.failures - 1));
  }

  private scheduleRefresh(): void {
    if (this.refreshQueued) return;
    this.refreshQueued = true;
    queueMicrotask(() => {
      this.refreshQueued = false;
      this.refresh();
    });
  }

  private refresh(): void {
    if (this.state !== "joined") return;
    this.view.set(readyPods(this.informer.list()));
    const listed = this.view.members().includes(this.memberId);
    if (listed !== this.selfListed) {
      this.selfListed = listed;
      this.log.info(
        { memberId: this.memberId, members: this.view.members() },
        listed
          ? "kubernetes membership: this pod is a ready endpoint of the session Service"
          : "kubernetes membership: this pod is not a ready endpoint of the session Service",
      );
    }
  }
}

/** The pod's ServiceAccount; throws outside a pod rather than failing later on a bad URL. */
function inClusterConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromCluster();
  const server = kc.getCurrentCluster()?.server ?? "";
  if (!URL.canParse(server))
    throw new Error(
      `the kubernetes membership found no API server (${server}): outside a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT unset) it needs a kubeConfig`,
    );
  return kc;
}

/** `promise`'s value, or a rejection naming `what` once `ms` passed first. */
async function timeBound<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** An API error in one line, with the fix for the usual one (RBAC). */
function describe(err: unknown): string {
  if (err === undefined) return "no answer yet";
  const code = (err as { code?: unknown; statusCode?: unknown }).code;
  const text = err instanceof Error ? err.message : String(err);
  if (code === 403)
    return `${text} (the pod's ServiceAccount needs get, list and watch on endpointslices.discovery.k8s.io in its namespace)`;
  return text;
}
