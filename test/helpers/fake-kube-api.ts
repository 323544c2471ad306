// NO KUBERNETES CLUSTER IS INVOLVED: this is a fake API server, a local node:http server that
// speaks just enough of the Kubernetes API for EndpointSlices (discovery.k8s.io/v1) that a real
// @kubernetes/client-node informer can list and watch through it, wire protocol and all:
//   LIST  GET /apis/discovery.k8s.io/v1/namespaces/<ns>/endpointslices?labelSelector=k=v
//         → an EndpointSliceList whose metadata.resourceVersion is the current version;
//   WATCH the same path with ?watch=true&resourceVersion=N → a chunked stream of newline-
//         delimited WatchEvents (ADDED, MODIFIED, DELETED) for every change after N, kept open
//         for the changes to come; a resourceVersion older than the kept history is answered
//         the way the real API server does (an ERROR event with a 410 Expired Status, then the
//         end of the stream), or with an HTTP 410 when the test asks for that instead.
// The test drives it: it adds, changes and deletes slices, ends open watches (as the server's
// watch timeout does) or breaks them (destroys their sockets), makes the server refuse everything (503 unavailable, 403 forbidden), and forgets
// the history so a resumed watch gets 410. Every request is logged so a test can assert what the client asked.
// A label selector is matched against the object's current labels only (the real server also
// sends DELETED for an object whose labels stop matching); the tests never relabel a slice.
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";

const PATH = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices$/;
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** One endpoint of a slice, as the EndpointSlice controller would write it for a pod. */
export interface FakeEndpoint {
  pod: string;
  /** Omitted: the field is left out of the object (the API says nil means ready). */
  ready?: boolean;
  terminating?: boolean;
  /** targetRef.kind; "Pod" unless a test wants an endpoint that is not a pod. */
  kind?: string;
}

/** What the fake was asked, in arrival order. */
export interface FakeRequest {
  namespace: string;
  watch: boolean;
  /** The resourceVersion query parameter, undefined when absent. */
  resourceVersion: string | undefined;
  labelSelector: string | undefined;
  /** The HTTP status answered (200 for a watch, even one that then reports 410 in-stream). */
  status: number;
}

interface Slice {
  metadata: {
    name: string;
    namespace: string;
    resourceVersion: string;
    labels: Record<string, string>;
  };
  [field: string]: unknown;
}

interface WatchEvent {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: Slice;
}

interface OpenWatch {
  namespace: string;
  selector: Record<string, string>;
  res: ServerResponse;
}

export class FakeKubeApi {
  readonly requests: FakeRequest[] = [];
  /** How an expired resourceVersion is refused: in-stream like the real server, or as HTTP 410. */
  expiredAnswer: "event" | "status" = "event";
  private readonly slices = new Map<string, Slice>();
  private readonly history: WatchEvent[] = [];
  private readonly watches = new Set<OpenWatch>();
  private rv = 100;
  /** Watches from a resourceVersion below this get 410: the history before it is forgotten. */
  private oldestKeptRv = 0;
  /** While set, every request is answered with this status. */
  private refusal: { code: number; reason: string } | undefined;

  private constructor(private readonly server: Server) {}

  static async start(): Promise<FakeKubeApi> {
    const server = createServer();
    const api = new FakeKubeApi(server);
    server.on("request", (req, res) => api.handle(req, res));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return api;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A KubeConfig pointing at this fake, as a client outside a cluster would load one. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "fake", server: this.url, skipTLSVerify: true }],
      users: [{ name: "u" }],
      contexts: [{ name: "c", cluster: "fake", user: "u" }],
      currentContext: "c",
    });
    return kc;
  }

  /** The current resourceVersion (of the last change). */
  resourceVersion(): string {
    return String(this.rv);
  }

  /** The watch requests received so far. */
  watchRequests(): FakeRequest[] {
    return this.requests.filter((r) => r.watch);
  }

  /** The list requests received so far. */
  listRequests(): FakeRequest[] {
    return this.requests.filter((r) => !r.watch);
  }

  openWatches(): number {
    return this.watches.size;
  }

  /** Creates or replaces the slice `name` of `serviceName`; returns its new resourceVersion. */
  putSlice(
    namespace: string,
    name: string,
    serviceName: string,
    endpoints: FakeEndpoint[],
  ): string {
    const key = `${namespace}/${name}`;
    const type = this.slices.has(key) ? "MODIFIED" : "ADDED";
    const slice = endpointSlice(namespace, name, serviceName, endpoints, ++this.rv);
    this.slices.set(key, slice);
    this.record(type, slice);
    return slice.metadata.resourceVersion;
  }

  deleteSlice(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const slice = this.slices.get(key);
    if (!slice) throw new Error(`no slice ${key}`);
    this.slices.delete(key);
    // A DELETED event carries the object's last state under the deletion's resourceVersion.
    const gone = { ...slice, metadata: { ...slice.metadata, resourceVersion: String(++this.rv) } };
    this.record("DELETED", gone);
  }

  /** Ends every open watch cleanly (the API server's watch timeout); returns how many. */
  endWatches(): number {
    const n = this.watches.size;
    for (const w of this.watches) w.res.end();
    this.watches.clear();
    return n;
  }

  /** Destroys the socket of every open watch (a network cut, not a clean end); returns how many. */
  breakWatches(): number {
    const n = this.watches.size;
    for (const w of this.watches) w.res.socket?.destroy();
    this.watches.clear();
    return n;
  }

  /**
   * Answers every request with `code` from now on (503: an API server down or overloaded; 403:
   * a ServiceAccount without the RBAC to list or watch), or serves again with undefined.
   */
  refuseWith(code: 403 | 503 | undefined): void {
    this.refusal =
      code === undefined
        ? undefined
        : { code, reason: code === 403 ? "Forbidden" : "ServiceUnavailable" };
  }

  /**
   * Forgets the history up to now (etcd compaction): a watch resuming from a resourceVersion
   * older than the current one is refused with 410 Gone and must relist.
   */
  expireHistory(): void {
    this.oldestKeptRv = this.rv;
    this.history.length = 0;
  }

  async stop(): Promise<void> {
    this.breakWatches();
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, "close");
  }

  private record(type: WatchEvent["type"], object: Slice): void {
    const event: WatchEvent = { rv: this.rv, type, object };
    this.history.push(event);
    for (const w of this.watches) this.send(w, event);
  }

  private send(w: OpenWatch, event: WatchEvent): void {
    if (w.namespace !== event.object.metadata.namespace) return;
    if (!matches(event.object.metadata.labels, w.selector)) return;
    w.res.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", this.url);
    const path = PATH.exec(url.pathname);
    const watch = url.searchParams.get("watch") === "true";
    const logged: FakeRequest = {
      namespace: path?.[1] ?? "",
      watch,
      resourceVersion: url.searchParams.get("resourceVersion") ?? undefined,
      labelSelector: url.searchParams.get("labelSelector") ?? undefined,
      status: 200,
    };
    this.requests.push(logged);
    const fail = (code: number, reason: string, message: string) => {
      logged.status = code;
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(status(code, reason, message)));
    };
    if (req.method !== "GET" || !path)
      return fail(404, "NotFound", "the fake serves endpointslices only");
    if (this.refusal)
      return fail(
        this.refusal.code,
        this.refusal.reason,
        `the fake API server refuses (${this.refusal.code})`,
      );
    const selector = parseSelector(logged.labelSelector);
    if (!selector)
      return fail(400, "BadRequest", `unsupported labelSelector ${logged.labelSelector}`);
    const namespace = logged.namespace;
    if (!watch) {
      const items = [...this.slices.values()].filter(
        (s) => s.metadata.namespace === namespace && matches(s.metadata.labels, selector),
      );
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          kind: "EndpointSliceList",
          apiVersion: "discovery.k8s.io/v1",
          metadata: { resourceVersion: String(this.rv) },
          items,
        }),
      );
      return;
    }
    const from = Number(logged.resourceVersion ?? "");
    if (!Number.isInteger(from) || from < 0)
      return fail(400, "BadRequest", "the fake watches from an explicit resourceVersion only");
    const expired = from < this.oldestKeptRv;
    if (expired && this.expiredAnswer === "status")
      return fail(410, "Expired", `too old resource version: ${from} (${this.oldestKeptRv})`);
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    // Headers go out at once, as the real server sends them: the client's watch is
    // established before the first event.
    res.flushHeaders();
    if (expired) {
      const gone = status(
        410,
        "Expired",
        `too old resource version: ${from} (${this.oldestKeptRv})`,
      );
      res.end(`${JSON.stringify({ type: "ERROR", object: gone })}\n`);
      return;
    }
    const w: OpenWatch = { namespace, selector, res };
    for (const event of this.history) if (event.rv > from) this.send(w, event);
    this.watches.add(w);
    res.on("close", () => this.watches.delete(w));
  }
}

function endpointSlice(
  namespace: string,
  name: string,
  serviceName: string,
  endpoints: FakeEndpoint[],
  rv: number,
): Slice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name,
      namespace,
      resourceVersion: String(rv),
      labels: {
        [SERVICE_NAME_LABEL]: serviceName,
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
      },
    },
    addressType: "IPv4",
    endpoints: endpoints.map((e, i) => ({
      addresses: [`10.0.0.${i + 1}`],
      conditions: {
        ...(e.ready === undefined ? {} : { ready: e.ready, serving: e.ready }),
        ...(e.terminating === undefined ? {} : { terminating: e.terminating }),
      },
      targetRef: { kind: e.kind ?? "Pod", name: e.pod, namespace },
    })),
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  };
}

function status(code: number, reason: string, message: string): object {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
}

/** `k=v,k2=v2` (equality only, all the backend uses); undefined for anything else. */
function parseSelector(selector: string | undefined): Record<string, string> | undefined {
  const pairs: Record<string, string> = {};
  if (!selector) return pairs;
  for (const term of selector.split(",")) {
    const m = /^([^=!]+)==?([^=]*)$/.exec(term.trim());
    if (!m) return undefined;
    pairs[m[1]] = m[2];
  }
  return pairs;
}

function matches(labels: Record<string, string>, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
