// The kustomize manifests (k8s/) and skaffold.yaml, checked as far as a machine without a
// cluster allows: each overlay rendered by the real `kubectl kustomize`; every object validated
// against the Kubernetes schemas (kubernetes-models) and type-checked for unknown fields; then
// what Megaphone needs of them: probes, resources and the restricted security context on every
// container, an environment that passes Megaphone's own config parser, a drain that fits the
// grace period, the session's membership Service and RBAC, the edge without an API token, HPAs
// that target Deployments of the same render; with k8s/components/nodes, the same of the node
// pods that replace both tiers; overlay nodes-prod against the chart's mode nodes render (real
// helm, test/helpers/helm.ts). No API server is involved.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import type { INamespace } from "kubernetes-models/v1/Namespace";
import type { IService } from "kubernetes-models/v1/Service";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import type { IRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { parse as parseYaml } from "yaml";
import { SETTINGS, type Config } from "../../services/shared/config.js";
import { envName } from "../../services/shared/config-parse.js";
import { chartOnly, normalize, normalizedByKey, parityKey } from "../helpers/chart-parity.js";
import { helmTemplate } from "../helpers/helm.js";
import { checkC2s } from "../helpers/k8s-c2s.js";
import { kustomizeWithComponents } from "../helpers/k8s-compose.js";
import { excessPropertyProblems, validateWithModel } from "../helpers/k8s-schema.js";
import { containers, ofKind, resolveEnv, selects, workloads } from "../helpers/k8s-objects.js";
import { kubectlVersion, kustomize, ref, type K8sObject } from "../helpers/kustomize.js";
import {
  configOf,
  containerPort,
  EXIT_AFTER_GRACE_MS,
  megaphoneCommand,
  preStopMs,
  tier,
} from "../helpers/megaphone-pods.js";
import { report } from "../helpers/report.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CHART = `${ROOT}charts/megaphone`;

/** The Secrets the component k8s/components/c2s expects (the certificate). */
const C2S_SECRETS = { "megaphone-tls": { "tls.crt": "(PEM)", "tls.key": "(PEM)" } };
const C2S_COMPONENT = "k8s/components/c2s";
/** The component that replaces the edge and session tiers with `megaphone node` pods. */
const NODES_COMPONENT = "k8s/components/nodes";
const REDIS_URL_SECRET = { "megaphone-redis": { url: "redis://redis.invalid:6379" } };

/**
 * Every kustomization, with the Secrets it expects the operator to have created and the number
 * of HPAs it has; `components` renders `dir` with them added at the end of its own `components:`
 * list, as the README tells an operator to add k8s/components/c2s (after any component `dir`
 * lists already, k8s/components/prod included). `nodes`: it runs `megaphone node` pods instead
 * of the edge and session tiers. `restricted`: every object is in the namespace of its
 * Namespace, which enforces Pod Security "restricted", and every image is tagged (production).
 */
const RENDERS: {
  dir: string;
  components?: string[];
  externalSecrets: Record<string, Record<string, string>>;
  hpas: number;
  nodes?: boolean;
  restricted?: boolean;
}[] = [
  {
    dir: "k8s/base",
    externalSecrets: { "megaphone-redis": { url: "redis://redis.invalid:6379" } },
    hpas: 0,
  },
  { dir: "k8s/overlays/dev", externalSecrets: {}, hpas: 0 },
  {
    dir: "k8s/overlays/prod",
    externalSecrets: { "megaphone-redis": { url: "redis://redis.invalid:6379" } },
    hpas: 2,
    restricted: true,
  },
  {
    dir: "k8s/overlays/dev",
    components: [C2S_COMPONENT],
    externalSecrets: C2S_SECRETS,
    hpas: 0,
  },
  {
    dir: "k8s/overlays/prod",
    components: [C2S_COMPONENT],
    externalSecrets: { "megaphone-redis": { url: "redis://redis.invalid:6379" }, ...C2S_SECRETS },
    hpas: 2,
    restricted: true,
  },
  {
    dir: "k8s/base",
    components: [NODES_COMPONENT],
    externalSecrets: REDIS_URL_SECRET,
    hpas: 0,
    nodes: true,
  },
  { dir: "k8s/overlays/nodes-dev", externalSecrets: {}, hpas: 0, nodes: true },
  {
    dir: "k8s/overlays/nodes-prod",
    externalSecrets: REDIS_URL_SECRET,
    hpas: 1,
    nodes: true,
    restricted: true,
  },
  {
    dir: "k8s/overlays/nodes-prod",
    components: [C2S_COMPONENT],
    externalSecrets: { ...REDIS_URL_SECRET, ...C2S_SECRETS },
    hpas: 1,
    nodes: true,
    restricted: true,
  },
];
const nameOf = (r: { dir: string; components?: string[] }) =>
  [r.dir, ...(r.components ?? [])].join(" + ");

describe("Kubernetes manifests (kubectl kustomize; no cluster)", function () {
  this.timeout(60000);
  const rendered = new Map<string, K8sObject[]>();

  before(async () => {
    report(`kubectl: ${await kubectlVersion()}`);
    for (const r of RENDERS)
      rendered.set(
        nameOf(r),
        r.components
          ? await kustomizeWithComponents(
              `${ROOT}${r.dir}`,
              r.components.map((c) => `${ROOT}${c}`),
            )
          : await kustomize(`${ROOT}${r.dir}`),
      );
  });

  for (const r of RENDERS) {
    const { externalSecrets, hpas } = r;
    // The processes that serve clients and those that own shards: one and the same with nodes.
    const clientTier = r.nodes ? "node" : "edge";
    const memberTier = r.nodes ? "node" : "session";
    describe(nameOf(r), () => {
      const objects = () => rendered.get(nameOf(r)) as K8sObject[];

      it("validates every object against its Kubernetes schema (kubernetes-models)", async () => {
        for (const o of objects()) await validateWithModel(o);
        report(`${objects().length} objects: ${objects().map(ref).join(", ")}`);
      });

      it("has no field the Kubernetes API does not know (TypeScript excess-property check)", () => {
        const problems = excessPropertyProblems(objects());
        assert.deepEqual(problems, [], problems.map((p) => `${p.object}: ${p.message}`).join("\n"));
      });

      if (r.restricted)
        it("puts every namespaced object in the namespace megaphone, which enforces the restricted Pod Security profile; tagged images", () => {
          const [ns] = ofKind<INamespace>(objects(), "Namespace");
          assert.equal(ns?.metadata.name, "megaphone");
          assertRestrictedNamespaceTaggedImages(objects());
        });

      it("gives every container probes, requests and limits, and the restricted security context", () => {
        let checked = 0;
        for (const w of workloads(objects())) {
          const podSc = w.pod.securityContext ?? {};
          for (const c of containers(w.pod)) {
            const where = `${w.name}/${c.name}`;
            assert.ok(c.readinessProbe, `${where}: readinessProbe`);
            assert.ok(c.livenessProbe, `${where}: livenessProbe`);
            for (const r of ["cpu", "memory"]) {
              assert.ok(c.resources?.requests?.[r], `${where}: requests.${r}`);
              assert.ok(c.resources?.limits?.[r], `${where}: limits.${r}`);
            }
            const sc = c.securityContext ?? {};
            assert.equal(sc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
            assert.equal(sc.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
            assert.ok(sc.capabilities?.drop?.includes("ALL"), `${where}: capabilities.drop ALL`);
            assert.equal(sc.runAsNonRoot ?? podSc.runAsNonRoot, true, `${where}: runAsNonRoot`);
            const uid = sc.runAsUser ?? podSc.runAsUser;
            assert.ok(uid === undefined || uid > 0, `${where}: runAsUser ${uid}`);
            const seccomp = sc.seccompProfile?.type ?? podSc.seccompProfile?.type;
            assert.equal(seccomp, "RuntimeDefault", `${where}: seccompProfile`);
            checked++;
          }
        }
        assert.ok(checked >= (r.nodes ? 1 : 2), `${checked} containers`);
        report(`${checked} containers checked`);
      });

      it("turns Service links off (their variables share the MEGAPHONE_ prefix of the settings)", () => {
        for (const w of workloads(objects()))
          assert.equal(w.pod.enableServiceLinks, false, `${w.kind}/${w.name}`);
      });

      it("sets only known settings, and each megaphone container's environment passes the config parser", () => {
        const known = new Set(Object.keys(SETTINGS).map((k) => envName(k)));
        const seen: string[] = [];
        for (const w of workloads(objects()))
          for (const c of containers(w.pod)) {
            if (!megaphoneCommand(c)) continue;
            const env = resolveEnv(c, { objects: objects(), workload: w, externalSecrets });
            for (const name of Object.keys(env))
              if (name.startsWith("MEGAPHONE_"))
                assert.ok(known.has(name), `${w.name}/${c.name}: ${name} is no Megaphone setting`);
            configOf(objects(), w, c, externalSecrets); // throws a ConfigError naming the setting
            seen.push(`${w.name} (${megaphoneCommand(c)}, ${Object.keys(env).length} variables)`);
          }
        assert.equal(seen.length, r.nodes ? 1 : 2, seen.join(", "));
        report(seen.join(", "));
      });

      it("serves the probes on the port each process listens on", () => {
        for (const [command, portOf] of [
          ["edge", (cfg: Config) => cfg.port],
          ["session", (cfg: Config) => cfg.httpPort],
          ["node", (cfg: Config) => cfg.port],
        ] as const)
          for (const { w, c } of tier(objects(), command)) {
            const listening = portOf(configOf(objects(), w, c, externalSecrets));
            for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
              if (!probe) continue;
              assert.ok(probe.httpGet, `${w.name}: HTTP probes (/readyz, /healthz)`);
              assert.equal(containerPort(c, probe.httpGet.port), listening, `${w.name} probe port`);
            }
            assert.equal(c.readinessProbe?.httpGet?.path, "/readyz", `${w.name} readiness`);
            assert.equal(c.livenessProbe?.httpGet?.path, "/healthz", `${w.name} liveness`);
          }
      });

      it("has edges and sessions (or nodes) agree on the shard count and the domain", () => {
        const seen = new Set<string>();
        for (const command of ["edge", "session", "node"])
          for (const { w, c } of tier(objects(), command)) {
            const cfg = configOf(objects(), w, c, externalSecrets);
            seen.add(`${cfg.shardCount} shards, domain ${cfg.domain}`);
          }
        assert.equal(seen.size, 1, [...seen].join(" / "));
      });

      it(`gives the ${clientTier} time to drain: preStop + shutdownGraceMs fit terminationGracePeriodSeconds`, () => {
        const edges = tier(objects(), clientTier);
        assert.equal(edges.length, 1);
        for (const { w, c } of edges) {
          const cfg = configOf(objects(), w, c, externalSecrets);
          const graceMs = (w.pod.terminationGracePeriodSeconds ?? 30) * 1000;
          const sleepMs = preStopMs(c);
          assert.ok(sleepMs > 0, "it has a preStop sleep (endpoints leave before SIGTERM)");
          assert.ok(cfg.drainDelayMs + cfg.drainWindowMs <= cfg.shutdownGraceMs);
          assert.ok(
            sleepMs + cfg.drainDelayMs + cfg.drainWindowMs < graceMs,
            "the drain ends within the grace period",
          );
          assert.ok(
            sleepMs + cfg.shutdownGraceMs + EXIT_AFTER_GRACE_MS < graceMs,
            `preStop ${sleepMs} + shutdownGraceMs ${cfg.shutdownGraceMs} + ${EXIT_AFTER_GRACE_MS} must be below ${graceMs} ms`,
          );
          report(
            `${clientTier}: preStop ${sleepMs} ms, drain delay ${cfg.drainDelayMs} + window ${cfg.drainWindowMs} ms, ` +
              `shutdownGraceMs ${cfg.shutdownGraceMs} ms, terminationGracePeriodSeconds ${graceMs / 1000}`,
          );
        }
      });

      it(`gives the ${memberTier} time to hand its shards over: shutdownGraceMs fits the grace period`, () => {
        const sessions = tier(objects(), memberTier);
        assert.equal(sessions.length, 1);
        for (const { w, c } of sessions) {
          const cfg = configOf(objects(), w, c, externalSecrets);
          const graceMs = (w.pod.terminationGracePeriodSeconds ?? 30) * 1000;
          assert.ok(preStopMs(c) + cfg.shutdownGraceMs + EXIT_AFTER_GRACE_MS < graceMs);
        }
      });

      it(`runs the ${memberTier} on the kubernetes membership of a Service that selects it, with RBAC for EndpointSlices only`, () => {
        const members = tier(objects(), memberTier);
        assert.equal(members.length, 1, `${memberTier} Deployments`);
        const [{ w, c }] = members;
        const cfg = configOf(objects(), w, c, externalSecrets);
        assert.equal(cfg.membership, "kubernetes");
        const byName = (name?: string) => c.env?.find((e) => e.name === name)?.valueFrom?.fieldRef;
        assert.equal(byName(envName("id"))?.fieldPath, "metadata.name");
        assert.equal(byName(envName("kubernetesNamespace"))?.fieldPath, "metadata.namespace");

        const services = ofKind<IService>(objects(), "Service");
        const svc = services.find((s) => s.metadata.name === cfg.kubernetesSessionService);
        assert.ok(svc, `no Service ${cfg.kubernetesSessionService} in the render`);
        assert.ok(
          selects({ matchLabels: svc.spec?.selector }, w.labels),
          `it selects the ${memberTier} pods`,
        );
        assert.notEqual(svc.spec?.publishNotReadyAddresses, true, "unready pods are no members");

        const sa = w.pod.serviceAccountName;
        assert.ok(sa, `the ${memberTier} has its own ServiceAccount`);
        assert.ok(ofKind(objects(), "ServiceAccount").some((s) => s.metadata.name === sa));
        assert.notEqual(w.pod.automountServiceAccountToken, false, "the member needs its token");
        const bindings = ofKind<IRoleBinding>(objects(), "RoleBinding").filter((b) =>
          b.subjects?.some((s) => s.kind === "ServiceAccount" && s.name === sa),
        );
        assert.equal(bindings.length, 1, `RoleBindings of ${sa}`);
        const [binding] = bindings;
        for (const s of binding.subjects ?? [])
          if (s.namespace !== undefined)
            assert.equal(
              s.namespace,
              w.object.metadata.namespace,
              "subject in the pod's namespace",
            );
        assert.equal(binding.roleRef.kind, "Role", "namespaced, nothing cluster-wide");
        const role = ofKind<IRole>(objects(), "Role").find(
          (r) => r.metadata.name === binding.roleRef.name,
        );
        assert.ok(role, `no Role ${binding.roleRef.name}`);
        assert.deepEqual(role.rules, [
          {
            apiGroups: ["discovery.k8s.io"],
            resources: ["endpointslices"],
            verbs: ["get", "list", "watch"],
          },
        ]);
        assert.equal(ofKind(objects(), "ClusterRoleBinding").length, 0);
      });

      it(`mounts no service account token in any pod but the ${memberTier}'s`, () => {
        const sessions = new Set(tier(objects(), memberTier).map(({ w }) => w.name));
        for (const w of workloads(objects())) {
          if (sessions.has(w.name)) continue;
          assert.equal(w.pod.automountServiceAccountToken, false, `${w.kind}/${w.name}`);
        }
        if (r.nodes) return; // the node is the member: its token and Role are checked above
        const [{ w: edge }] = tier(objects(), "edge");
        const edgeSa = edge.pod.serviceAccountName;
        assert.ok(edgeSa, "the edge has its own ServiceAccount (not the namespace's default)");
        const bound = ofKind<IRoleBinding>(objects(), "RoleBinding").some((b) =>
          b.subjects?.some((s) => s.name === edgeSa),
        );
        assert.equal(bound, false, "the edge's ServiceAccount has no role");
      });

      it("has every Service, PDB, NetworkPolicy and topology spread constraint select real pods", () => {
        const pods = workloads(objects());
        const anyPod = (sel: Parameters<typeof selects>[0]) =>
          pods.some((w) => selects(sel, w.labels));
        for (const s of ofKind<IService>(objects(), "Service"))
          assert.ok(anyPod({ matchLabels: s.spec?.selector }), `${ref(s)} selects no pod`);
        for (const p of ofKind<IPodDisruptionBudget>(objects(), "PodDisruptionBudget"))
          assert.ok(anyPod(p.spec?.selector), `${ref(p)} selects no pod`);
        for (const n of ofKind<INetworkPolicy>(objects(), "NetworkPolicy"))
          if (Object.keys(n.spec?.podSelector?.matchLabels ?? {}).length > 0)
            assert.ok(anyPod(n.spec?.podSelector), `${ref(n)} selects no pod`);
        for (const w of pods) {
          assert.ok(selects(readSelector(w.object), w.labels), `${w.name}: its selector`);
          for (const t of w.pod.topologySpreadConstraints ?? [])
            assert.ok(selects(t.labelSelector, w.labels), `${w.name}: spread over its own pods`);
        }
      });

      it("serves TCP c2s only with the c2s component: named container ports a Service targets, env and certificate mounts that agree", () => {
        const lines = checkC2s(objects(), externalSecrets, clientTier);
        assert.equal(
          lines.some((l) => !l.endsWith("no c2s")),
          r.components?.includes(C2S_COMPONENT) ?? false,
          lines.join("; "),
        );
        report(lines.join("; "));
      });

      it(`has ${hpas} HPA(s), each scaling a Deployment of this render that leaves spec.replicas to it`, () => {
        const deployments = ofKind(objects(), "Deployment");
        const found = ofKind<IHorizontalPodAutoscaler>(objects(), "HorizontalPodAutoscaler");
        assert.equal(found.length, hpas, "HPAs");
        for (const h of found) {
          const target = h.spec?.scaleTargetRef;
          const d = deployments.find(
            (x) => target?.kind === "Deployment" && x.metadata.name === target.name,
          );
          assert.ok(d, `${ref(h)} targets ${target?.kind}/${target?.name}, not in the render`);
          assert.equal(target?.apiVersion, "apps/v1");
          assert.equal(
            (d.spec as { replicas?: number }).replicas,
            undefined,
            `${ref(d)}: replicas`,
          );
          assert.ok((h.spec?.minReplicas ?? 1) <= (h.spec?.maxReplicas ?? 0));
        }
      });
    });
  }

  describe("component k8s/components/c2s", () => {
    // The pods that serve clients: the edges, or with nodes (nodes-prod) the node pods.
    for (const [overlay, client] of [
      ["k8s/overlays/dev", "edge"],
      ["k8s/overlays/prod", "edge"],
      ["k8s/overlays/nodes-prod", "node"],
    ])
      it(`changes ${overlay} only by the c2s Service, the ${client} Deployment and the edge NetworkPolicy if any`, () => {
        const without = rendered.get(overlay) as K8sObject[];
        const withC2s = rendered.get(nameOf({ dir: overlay, components: [C2S_COMPONENT] }));
        assert.ok(withC2s);
        const changed = [`Deployment/megaphone-${client}`, "NetworkPolicy/megaphone-edge"];
        assert.deepEqual(
          withC2s.map(ref).sort(),
          [...without.map(ref), "Service/megaphone-edge-c2s"].sort(),
        );
        for (const o of without)
          if (!changed.includes(ref(o)))
            assert.deepEqual(
              withC2s.find((x) => ref(x) === ref(o)),
              o,
              ref(o),
            );
        const selectorOf = (name: string) =>
          ofKind<IService>(withC2s, "Service").find((x) => x.metadata.name === name)?.spec
            ?.selector;
        assert.deepEqual(
          selectorOf("megaphone-edge-c2s"),
          selectorOf("megaphone-edge"),
          "the c2s Service selects what megaphone-edge selects",
        );
        const [{ w }] = tier(withC2s, client);
        assert.ok(selects({ matchLabels: selectorOf("megaphone-edge-c2s") }, w.labels), client);
        // A LoadBalancer in another namespace than the pods selects none of them.
        const namespaceOf = (name: string) =>
          withC2s.find((x) => ref(x) === `Service/${name}`)?.metadata.namespace;
        assert.equal(
          namespaceOf("megaphone-edge-c2s"),
          namespaceOf("megaphone-edge"),
          "the c2s Service is in megaphone-edge's namespace",
        );
      });

    // Where c2s goes in an overlay's components: list (after nodes) changes nothing; the render
    // of RENDERS has it last.
    for (const [overlay, at, where] of [
      ["k8s/overlays/prod", 0, "before k8s/components/prod"],
      ["k8s/overlays/nodes-prod", 1, "between k8s/components/nodes and k8s/components/prod"],
    ] as const)
      it(`renders ${overlay} with c2s listed ${where} as with c2s listed last`, async () => {
        const last = rendered.get(nameOf({ dir: overlay, components: [C2S_COMPONENT] }));
        assert.ok(last);
        const placed = await kustomizeWithComponents(
          `${ROOT}${overlay}`,
          [`${ROOT}${C2S_COMPONENT}`],
          at,
        );
        const byRef = (objects: K8sObject[]) =>
          [...objects].sort((x, y) => ref(x).localeCompare(ref(y)));
        assert.deepEqual(byRef(placed), byRef(last));
      });

    for (const overlay of ["prod", "nodes-prod"])
      it(`admits the c2s ports from anywhere in ${overlay}'s edge NetworkPolicy, and nothing else new`, () => {
        const policy = (objects: K8sObject[]) =>
          ofKind<INetworkPolicy>(objects, "NetworkPolicy").find(
            (n) => n.metadata.name === "megaphone-edge",
          );
        const dir = `k8s/overlays/${overlay}`;
        const before = policy(rendered.get(dir) as K8sObject[]);
        const after = policy(
          rendered.get(nameOf({ dir, components: [C2S_COMPONENT] })) as K8sObject[],
        );
        assert.ok(before?.spec && after?.spec);
        const ingress = after.spec.ingress ?? [];
        assert.deepEqual(
          { ...after.spec, ingress: ingress.slice(0, -1) },
          before.spec,
          "the rest as it was",
        );
        assert.deepEqual(ingress.at(-1), {
          ports: [
            { port: "xmpp-client", protocol: "TCP" },
            { port: "xmpps-client", protocol: "TCP" },
          ],
        });
      });
  });

  describe("component k8s/components/nodes", () => {
    const base = () => rendered.get("k8s/base") as K8sObject[];
    const objects = () =>
      rendered.get(nameOf({ dir: "k8s/base", components: [NODES_COMPONENT] })) as K8sObject[];
    const NODE_OBJECTS = [
      "Deployment/megaphone-node",
      "Service/megaphone-node",
      "ServiceAccount/megaphone-node",
      "Role/megaphone-node",
      "RoleBinding/megaphone-node",
    ];
    const REPLACED = [
      "Deployment/megaphone-edge",
      "Deployment/megaphone-session",
      "Service/megaphone-session",
      "ServiceAccount/megaphone-session",
      "Role/megaphone-session",
      "RoleBinding/megaphone-session",
      "ServiceAccount/megaphone-edge",
    ];

    it("replaces the edge and session tiers of k8s/base with the node objects, and changes only megaphone-edge's selector", () => {
      assert.deepEqual(tier(objects(), "edge"), [], "no edge pods");
      assert.deepEqual(tier(objects(), "session"), [], "no session pods");
      assert.deepEqual(
        objects().map(ref).sort(),
        [
          ...base()
            .map(ref)
            .filter((x) => !REPLACED.includes(x)),
          ...NODE_OBJECTS,
        ].sort(),
      );
      for (const o of base())
        if (!REPLACED.includes(ref(o)) && ref(o) !== "Service/megaphone-edge")
          assert.deepEqual(
            objects().find((x) => ref(x) === ref(o)),
            o,
            ref(o),
          );
      const edgeService = (from: K8sObject[]) =>
        ofKind<IService>(from, "Service").find((s) => s.metadata.name === "megaphone-edge");
      const [before, after] = [edgeService(base()), edgeService(objects())];
      assert.ok(before?.spec && after?.spec);
      assert.deepEqual(
        { ...after, spec: { ...after.spec, selector: undefined } },
        { ...before, spec: { ...before.spec, selector: undefined } },
        "megaphone-edge but for its selector",
      );
    });

    it("runs `megaphone node` in one Deployment, its id the pod's name, on the kubernetes membership of the headless Service megaphone-node in its own namespace", () => {
      const nodes = tier(objects(), "node");
      assert.equal(nodes.length, 1, "node Deployments");
      const [{ w, c }] = nodes;
      assert.equal(w.name, "megaphone-node");
      assert.deepEqual(c.args, ["node"]);
      const fieldOf = (name: string) =>
        c.env?.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;
      const valueOf = (name: string) => c.env?.find((e) => e.name === name)?.value;
      assert.equal(fieldOf(envName("id")), "metadata.name");
      assert.equal(valueOf(envName("membership")), "kubernetes");
      assert.equal(fieldOf(envName("kubernetesNamespace")), "metadata.namespace");
      assert.equal(valueOf(envName("kubernetesSessionService")), "megaphone-node");
      const cfg = configOf(objects(), w, c, REDIS_URL_SECRET);
      assert.equal(cfg.id, w.examplePodName);
      assert.equal(cfg.kubernetesNamespace, w.namespace);
      const svc = ofKind<IService>(objects(), "Service").find(
        (s) => s.metadata.name === cfg.kubernetesSessionService,
      );
      assert.ok(svc, `no Service ${cfg.kubernetesSessionService}`);
      assert.equal(svc.spec?.clusterIP, "None", "headless");
      assert.notEqual(svc.spec?.publishNotReadyAddresses, true, "unready pods are no members");
      assert.ok(selects({ matchLabels: svc.spec?.selector }, w.labels), "it selects the nodes");
    });

    it("has megaphone-edge select the node pods only, on the port the node listens on", () => {
      const [{ w, c }] = tier(objects(), "node");
      const cfg = configOf(objects(), w, c, REDIS_URL_SECRET);
      const svc = ofKind<IService>(objects(), "Service").find(
        (s) => s.metadata.name === "megaphone-edge",
      );
      assert.ok(svc?.spec);
      const selected = workloads(objects()).filter((x) =>
        selects({ matchLabels: svc.spec?.selector }, x.labels),
      );
      assert.deepEqual(
        selected.map((x) => x.name),
        ["megaphone-node"],
      );
      for (const p of svc.spec.ports ?? [])
        assert.equal(containerPort(c, p.targetPort), cfg.port, `megaphone-edge:${p.name}`);
    });

    it("binds a Role that watches EndpointSlices to the node pods' own ServiceAccount, whose token they mount", () => {
      const [{ w }] = tier(objects(), "node");
      const sa = w.pod.serviceAccountName;
      assert.equal(sa, "megaphone-node");
      assert.equal(w.pod.automountServiceAccountToken, true);
      const binding = ofKind<IRoleBinding>(objects(), "RoleBinding").find((b) =>
        b.subjects?.some((s) => s.kind === "ServiceAccount" && s.name === sa),
      );
      assert.ok(binding, `no RoleBinding of ${sa}`);
      const role = ofKind<IRole>(objects(), "Role").find(
        (x) => x.metadata.name === binding.roleRef.name && binding.roleRef.kind === "Role",
      );
      assert.ok(role, `no Role ${binding.roleRef.name}`);
      assert.ok(
        (role.rules ?? []).some(
          (rule) =>
            rule.apiGroups?.includes("discovery.k8s.io") &&
            rule.resources?.includes("endpointslices") &&
            rule.verbs.includes("watch"),
        ),
        "watch endpointslices",
      );
    });

    it("probes the node's own port: /readyz for readiness, /healthz for liveness and startup", () => {
      const [{ w, c }] = tier(objects(), "node");
      const cfg = configOf(objects(), w, c, REDIS_URL_SECRET);
      const probes = {
        readinessProbe: "/readyz",
        livenessProbe: "/healthz",
        startupProbe: "/healthz",
      };
      for (const [name, path] of Object.entries(probes)) {
        const probe = c[name as keyof typeof probes];
        assert.equal(probe?.httpGet?.path, path, name);
        assert.equal(containerPort(c, probe.httpGet.port), cfg.port, `${name} port`);
      }
    });

    it("runs two nodes against its own Redis in overlay nodes-dev (dev's Redis and Secret)", () => {
      const dev = rendered.get("k8s/overlays/nodes-dev") as K8sObject[];
      const [{ w, c }] = tier(dev, "node");
      assert.equal((w.object.spec as { replicas?: number }).replicas, 2);
      const url = new URL(configOf(dev, w, c, {}).redis);
      const redis = ofKind<IService>(dev, "Service").find((s) => s.metadata.name === url.hostname);
      assert.ok(redis, `MEGAPHONE_REDIS names ${url.hostname}, no Service of the render`);
      assert.ok(
        workloads(dev).some((x) => selects({ matchLabels: redis.spec?.selector }, x.labels)),
        "a Redis workload behind it",
      );
    });
  });

  describe("overlay dev", () => {
    const objects = () => rendered.get("k8s/overlays/dev") as K8sObject[];

    it("runs one edge and one session against its own Redis", () => {
      for (const command of ["edge", "session"]) {
        const [{ w }] = tier(objects(), command);
        assert.equal((w.object.spec as { replicas?: number }).replicas, 1, `${command} replicas`);
      }
      assert.equal(ofKind(objects(), "HorizontalPodAutoscaler").length, 0);
      const [{ w, c }] = tier(objects(), "edge");
      const url = new URL(configOf(objects(), w, c, {}).redis);
      const svc = ofKind<IService>(objects(), "Service").find(
        (s) => s.metadata.name === url.hostname,
      );
      assert.ok(svc, `MEGAPHONE_REDIS names ${url.hostname}, no Service of the render`);
      assert.ok(
        svc.spec?.ports?.some((p) => p.port === Number(url.port || 6379)),
        "its port",
      );
      const redis = workloads(objects()).find((x) =>
        selects({ matchLabels: svc.spec?.selector }, x.labels),
      );
      assert.ok(redis, "a Redis workload behind it");
      report(
        `Redis: ${redis.kind}/${redis.name} behind Service ${url.hostname}:${url.port || 6379}`,
      );
    });
  });

  describe("overlay prod", () => {
    const objects = () => rendered.get("k8s/overlays/prod") as K8sObject[];

    it("autoscales and guards both tiers (HPA on CPU and the tier's Pods metric, PDB)", () => {
      const podsMetric: Record<string, string> = {
        edge: "megaphone_edge_connections",
        session: "megaphone_session_inbox_lag_entries",
      };
      for (const command of ["edge", "session"]) {
        const [{ w }] = tier(objects(), command);
        const hpa = ofKind<IHorizontalPodAutoscaler>(objects(), "HorizontalPodAutoscaler").find(
          (h) => h.spec?.scaleTargetRef.name === w.name,
        );
        assert.ok(hpa, `no HPA for ${w.name}`);
        assert.ok((hpa.spec?.minReplicas ?? 1) >= 2, `${w.name}: at least 2 replicas`);
        assert.ok(
          hpa.spec?.metrics?.some((m) => m.type === "Resource" && m.resource?.name === "cpu"),
        );
        assert.deepEqual(
          hpa.spec?.metrics?.filter((m) => m.type === "Pods").map((m) => m.pods?.metric.name),
          [podsMetric[command]],
          `${w.name}: Pods metric of the metric contract`,
        );
        const pdb = ofKind<IPodDisruptionBudget>(objects(), "PodDisruptionBudget").find((p) =>
          selects(p.spec?.selector, w.labels),
        );
        assert.ok(pdb, `no PDB for ${w.name}`);
      }
    });

    it("denies all traffic but the ingress to edges, Prometheus to both tiers, and Redis, DNS and the API server out", () => {
      const policies = ofKind<INetworkPolicy>(objects(), "NetworkPolicy");
      const deny = policies.find(
        (p) =>
          Object.keys(p.spec?.podSelector?.matchLabels ?? {}).length === 0 &&
          !p.spec?.ingress &&
          !p.spec?.egress,
      );
      assert.ok(
        deny?.spec?.policyTypes?.includes("Ingress") && deny.spec.policyTypes.includes("Egress"),
      );
      const forTier = (command: string) => {
        const [{ w }] = tier(objects(), command);
        const p = policies.find((x) => x !== deny && selects(x.spec?.podSelector, w.labels));
        assert.ok(p, `no NetworkPolicy for ${w.name}`);
        return p;
      };
      const fromNamespaces = (p: INetworkPolicy) =>
        (p.spec?.ingress ?? []).flatMap((r) =>
          (r.from ?? []).map(
            (f) => f.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"],
          ),
        );
      const egressPorts = (p: INetworkPolicy) =>
        (p.spec?.egress ?? []).flatMap((r) => (r.ports ?? []).map((x) => x.port));
      const edge = forTier("edge");
      const session = forTier("session");
      assert.deepEqual(fromNamespaces(edge).sort(), ["ingress-nginx", "monitoring"]);
      assert.deepEqual(fromNamespaces(session), ["monitoring"]);
      assert.deepEqual(egressPorts(edge).sort(), [26379, 53, 53, 6379]);
      assert.deepEqual(egressPorts(session).sort(), [26379, 443, 53, 53, 6379, 6443]);
    });
  });

  describe("overlay nodes-prod", () => {
    const objects = () => rendered.get("k8s/overlays/nodes-prod") as K8sObject[];
    const prod = () => rendered.get("k8s/overlays/prod") as K8sObject[];
    const nodesOnBase = () =>
      rendered.get(nameOf({ dir: "k8s/base", components: [NODES_COMPONENT] })) as K8sObject[];
    const node = () => {
      const nodes = tier(objects(), "node");
      assert.equal(nodes.length, 1, "node Deployments");
      const [{ w, c }] = nodes;
      return { w, c, cfg: configOf(objects(), w, c, REDIS_URL_SECRET) };
    };
    /** The objects of production that no pod kind owns: the namespace and its default deny. */
    const PROD_SHARED = ["Namespace/megaphone", "NetworkPolicy/megaphone-default-deny"];
    /** The nodes' HPA, PDB and NetworkPolicy (the chart's names in mode nodes). */
    const NODE_GUARDS = [
      "HorizontalPodAutoscaler/megaphone-node",
      "PodDisruptionBudget/megaphone-node",
      "NetworkPolicy/megaphone-edge",
    ];

    it("is k8s/base + k8s/components/nodes in prod's namespace with prod's image and default deny, plus the nodes' HPA, PDB and NetworkPolicy", () => {
      assert.deepEqual(
        objects().map(ref).sort(),
        [...nodesOnBase().map(ref), ...PROD_SHARED, ...NODE_GUARDS].sort(),
      );
      for (const name of PROD_SHARED)
        assert.deepEqual(
          objects().find((o) => ref(o) === name),
          prod().find((o) => ref(o) === name),
          name,
        );
      const [{ c: prodEdge }] = tier(prod(), "edge");
      const image = prodEdge.image;
      // What prod's namespace and image tag make of an object of base + nodes, and no more.
      const inProd = (o: K8sObject): K8sObject => {
        const copy = JSON.parse(JSON.stringify(o)) as K8sObject;
        copy.metadata.namespace = "megaphone";
        for (const s of ofKind<IRoleBinding>([copy], "RoleBinding")[0]?.subjects ?? [])
          if (s.kind === "ServiceAccount") s.namespace = "megaphone";
        for (const w of workloads([copy])) for (const c of containers(w.pod)) c.image = image;
        return copy;
      };
      for (const o of nodesOnBase())
        assert.deepEqual(
          objects().find((x) => ref(x) === ref(o)),
          inProd(o),
          ref(o),
        );
    });

    it("autoscales the nodes on CPU and open sockets per node, from 2 up to at most the shard count, and guards them with a PDB", () => {
      const { w, cfg } = node();
      const hpas = ofKind<IHorizontalPodAutoscaler>(objects(), "HorizontalPodAutoscaler");
      assert.deepEqual(
        hpas.map((h) => h.spec?.scaleTargetRef.name),
        [w.name],
        "one HPA, the nodes'",
      );
      const [hpa] = hpas;
      assert.ok(hpa.spec);
      assert.ok((hpa.spec.minReplicas ?? 1) >= 2, "at least 2 nodes");
      assert.ok(
        hpa.spec.maxReplicas <= cfg.shardCount,
        `maxReplicas ${hpa.spec.maxReplicas} > ${cfg.shardCount} shards: a node past them owns none`,
      );
      assert.ok(
        hpa.spec.metrics?.some((m) => m.type === "Resource" && m.resource?.name === "cpu"),
        "CPU",
      );
      assert.deepEqual(
        hpa.spec.metrics?.filter((m) => m.type === "Pods").map((m) => m.pods?.metric.name),
        ["megaphone_edge_connections"],
        "the Pods metric of the metric contract (nodes scale as edges)",
      );
      assert.ok(
        hpa.spec.behavior?.scaleDown?.policies?.every((p) => p.type === "Pods" && p.value === 1),
        "scale-down one node at a time (each hands its shards over)",
      );
      const pdbs = ofKind<IPodDisruptionBudget>(objects(), "PodDisruptionBudget");
      assert.equal(pdbs.length, 1, "PDBs");
      assert.ok(selects(pdbs[0].spec?.selector, w.labels), "the PDB selects the node pods");
      assert.equal(pdbs[0].spec?.maxUnavailable, 1);
      report(
        `HPA ${hpa.spec.minReplicas}–${hpa.spec.maxReplicas} nodes for ${cfg.shardCount} shards`,
      );
    });

    it("denies all traffic but the ingress controller and Prometheus to the node's port, and DNS, Redis and the API server out (prod's edge ingress and session egress)", () => {
      const { w, c, cfg } = node();
      const policies = ofKind<INetworkPolicy>(objects(), "NetworkPolicy");
      const deny = policies.find((p) => p.metadata.name === "megaphone-default-deny");
      assert.deepEqual(deny?.spec, { podSelector: {}, policyTypes: ["Ingress", "Egress"] });
      const others = policies.filter((p) => p !== deny);
      assert.equal(others.length, 1, "one policy besides the default deny");
      const [policy] = others;
      assert.ok(policy.spec);
      assert.ok(selects(policy.spec.podSelector, w.labels), "it selects the node pods");
      assert.deepEqual(policy.spec.policyTypes, ["Ingress", "Egress"]);
      const fromNamespaces = (policy.spec.ingress ?? []).flatMap((r) =>
        (r.from ?? []).map(
          (f) => f.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"],
        ),
      );
      assert.deepEqual(fromNamespaces.sort(), ["ingress-nginx", "monitoring"]);
      for (const r of policy.spec.ingress ?? [])
        for (const p of r.ports ?? [])
          assert.equal(containerPort(c, p.port), cfg.port, `ingress port ${p.port}`);
      const egressPorts = (policy.spec.egress ?? []).flatMap((r) =>
        (r.ports ?? []).map((x) => x.port),
      );
      assert.deepEqual(egressPorts.sort(), [26379, 443, 53, 53, 6379, 6443]);
      // Each node is an edge and a session member: clients and Prometheus come in as to prod's
      // edges; DNS, Redis and the API server (the kubernetes membership) go out as from its sessions.
      const prodPolicy = (name: string) =>
        ofKind<INetworkPolicy>(prod(), "NetworkPolicy").find((p) => p.metadata.name === name)?.spec;
      assert.deepEqual(policy.spec.ingress, prodPolicy("megaphone-edge")?.ingress, "ingress");
      assert.deepEqual(policy.spec.egress, prodPolicy("megaphone-session")?.egress, "egress");
    });

    for (const c2s of [false, true])
      it(`${c2s ? "with k8s/components/c2s, " : ""}agrees with the chart's mode nodes with node autoscaling, pdb and networkPolicy${c2s ? " and edge.c2s" : ""} on: the same objects but the namespace's, the same HPA, PDB, pod spec, Services and RBAC, and the same NetworkPolicy peers and ports`, async () => {
        const chart = (
          await helmTemplate(CHART, {
            set: {
              mode: "nodes",
              "node.autoscaling.enabled": "true",
              "node.pdb.enabled": "true",
              "networkPolicy.enabled": "true",
              "tests.enabled": "false",
              // As k8s/components/c2s: the Secret megaphone-tls, a LoadBalancer keeping addresses.
              ...(c2s && {
                "edge.c2s.enabled": "true",
                "edge.c2s.tls.secretName": "megaphone-tls",
                "edge.c2s.service.externalTrafficPolicy": "Local",
              }),
            },
          })
        ).filter((o) => !chartOnly(o));
        const render = c2s
          ? (rendered.get(
              nameOf({ dir: "k8s/overlays/nodes-prod", components: [C2S_COMPONENT] }),
            ) as K8sObject[])
          : objects();
        const ours = render.filter((o) => !PROD_SHARED.includes(ref(o)));
        assert.deepEqual(chart.map(parityKey).sort(), ours.map(parityKey).sort());
        const find = (from: K8sObject[], o: K8sObject) =>
          from.find((x) => parityKey(x) === parityKey(o)) as K8sObject;
        // kustomize writes the namespace into the RoleBinding's subject; the chart leaves it out,
        // and the API takes the binding's own: the same.
        const subjectsInOwnNamespace = (o: K8sObject) => {
          const copy = JSON.parse(JSON.stringify(o)) as K8sObject;
          for (const b of ofKind<IRoleBinding>([copy], "RoleBinding"))
            for (const x of b.subjects ?? [])
              if (x.namespace === o.metadata.namespace) delete x.namespace;
          return copy;
        };
        for (const o of ours.filter((x) => x.kind !== "NetworkPolicy"))
          assert.deepEqual(
            normalizedByKey(find(chart, o)),
            normalizedByKey(subjectsInOwnNamespace(o)),
            parityKey(o),
          );

        // The policies differ in form (the chart admits clients and Prometheus in two rules, and
        // its `helm test` pod besides): compare who may reach which port, and the egress.
        const [c, k] = [chart, ours].map((from) =>
          ofKind<INetworkPolicy>(from, "NetworkPolicy").find(
            (p) => p.metadata.name === "megaphone-edge",
          ),
        );
        assert.ok(c?.spec && k?.spec, "NetworkPolicy megaphone-edge in both");
        const spec = (p: INetworkPolicy) =>
          normalize(p as unknown as K8sObject) as { spec: INetworkPolicy["spec"] };
        const admitted = (p: INetworkPolicy) =>
          (spec(p).spec?.ingress ?? [])
            .flatMap((r) =>
              (r.from ?? [{}]).flatMap((peer) =>
                (r.ports ?? []).map((port) => JSON.stringify([peer, port])),
              ),
            )
            .filter((x) => !x.includes('"app.kubernetes.io/component":"test"'))
            .sort();
        assert.deepEqual(admitted(k), admitted(c), "ingress: peers and ports");
        assert.deepEqual(spec(k).spec?.egress, spec(c).spec?.egress, "egress");
        assert.deepEqual(spec(k).spec?.podSelector, spec(c).spec?.podSelector, "podSelector");
        assert.deepEqual(k.spec.policyTypes, c.spec.policyTypes);
        report(
          `${ours.length} objects compared with the chart's; ${admitted(k).length} ingress peers`,
        );
      });
  });

  describe("skaffold.yaml", () => {
    interface Skaffold {
      apiVersion: string;
      build: { artifacts: { image: string; context?: string; docker?: { dockerfile?: string } }[] };
      manifests: { kustomize: { paths: string[] } };
      deploy: { kubectl?: object };
      portForward: {
        resourceType: string;
        resourceName: string;
        port: number;
        localPort: number;
      }[];
      profiles: { name: string; deploy?: { helm?: { releases: { chartPath?: string }[] } } }[];
    }
    const skaffold = parseYaml(readFileSync(`${ROOT}skaffold.yaml`, "utf8")) as Skaffold;

    it("builds the image the dev overlay runs, from the Dockerfile", () => {
      assert.match(skaffold.apiVersion, /^skaffold\/v4/);
      const [artifact] = skaffold.build.artifacts;
      const dockerfile = `${ROOT}${artifact.context ?? "."}/${artifact.docker?.dockerfile ?? "Dockerfile"}`;
      assert.ok(existsSync(dockerfile), dockerfile);
      const dev = rendered.get("k8s/overlays/dev") as K8sObject[];
      for (const command of ["edge", "session"])
        assert.equal(tier(dev, command)[0].c.image, artifact.image, `${command} image`);
    });

    it("deploys the dev overlay with kubectl and forwards a port the edge Service has", () => {
      assert.deepEqual(skaffold.manifests.kustomize.paths, ["k8s/overlays/dev"]);
      assert.ok(skaffold.deploy.kubectl);
      const dev = rendered.get("k8s/overlays/dev") as K8sObject[];
      const [{ w: edge }] = tier(dev, "edge");
      for (const f of skaffold.portForward) {
        assert.equal(f.resourceType, "service");
        const svc = ofKind<IService>(dev, "Service").find(
          (s) => s.metadata.name === f.resourceName,
        );
        assert.ok(svc, `no Service ${f.resourceName} in the dev render`);
        assert.ok(selects({ matchLabels: svc.spec?.selector }, edge.labels), "it is the edge's");
        assert.ok(
          svc.spec?.ports?.some((p) => p.port === f.port),
          `port ${f.port}`,
        );
      }
    });

    it("has a helm profile that installs charts/megaphone", () => {
      const helm = skaffold.profiles.find((p) => p.name === "helm");
      const chartPath = helm?.deploy?.helm?.releases[0]?.chartPath;
      assert.ok(chartPath && existsSync(`${ROOT}${chartPath}/Chart.yaml`), `chart at ${chartPath}`);
    });
  });
});

/** A Namespace that enforces Pod Security "restricted", holding every other object; tagged images. */
function assertRestrictedNamespaceTaggedImages(objects: K8sObject[]): void {
  const [ns] = ofKind<INamespace>(objects, "Namespace");
  assert.ok(ns, "a Namespace");
  assert.equal(ns.metadata.labels?.["pod-security.kubernetes.io/enforce"], "restricted");
  for (const o of objects)
    if (o.kind !== "Namespace") assert.equal(o.metadata.namespace, ns.metadata.name, ref(o));
  for (const w of workloads(objects))
    for (const c of containers(w.pod))
      assert.match(c.image ?? "", /:(?!latest$)[\w.-]+$|@sha256:/, `${w.name}: ${c.image}`);
}

function readSelector(o: K8sObject): Parameters<typeof selects>[0] {
  return (o.spec as { selector?: Parameters<typeof selects>[0] }).selector;
}
