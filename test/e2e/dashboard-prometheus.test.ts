// Every query of the Grafana dashboard, and the queries the HPAs scale on, evaluated by a real
// Prometheus that scrapes a real mesh under a small load (observed-mesh.ts): each must return
// data. No Grafana runs here (it is not in Debian's packages); Prometheus is what Grafana would
// send these queries to, with the variables replaced as Grafana replaces them. The only panel
// queries that cannot be evaluated are kube-state-metrics' (no Kubernetes API server here);
// they are listed in NOT_HERE, printed, and still sent to Prometheus to prove they parse. The
// panels on metrics only `megaphone node` pods export (ONLY_NODES) are evaluated on a second
// deployment, two nodes under the same load (nodes and edge/session pods never run together),
// and must be empty on the mesh.
import assert from "node:assert/strict";
import {
  loadDashboard,
  panelQueries,
  parseLabelValues,
  substitute,
  variableQuery,
  type PanelQuery,
  type Substitution,
} from "../helpers/dashboard.js";
import { NAMESPACE, ObservedMesh, RELEASE } from "../helpers/observed-mesh.js";
import type { Sample } from "../helpers/prometheus.js";
import { report } from "../helpers/report.js";

/**
 * `$__rate_interval`: a window over the whole load. Grafana would use four scrape intervals
 * (4 s here), but several events of the load happen once (one refused login, one resumption),
 * and a window that short would show them for seconds only, then 0 or NaN.
 */
const VARIABLES: Substitution = { namespace: NAMESPACE, release: RELEASE, rateInterval: "1m" };

/** Panels whose data no process of Megaphone exports, and why they cannot be evaluated here. */
const NOT_HERE: Record<string, string> = {
  "HPA desired vs current replicas":
    "kube-state-metrics (kube_horizontalpodautoscaler_status_*) reads HPAs from a Kubernetes API server; none runs here",
};

/**
 * What the autoscalers ask (the metric contract's "HPA metrics"), as the chart's examples ask it:
 * - prometheus-adapter (charts/megaphone/examples/prometheus-adapter-values.yaml): the rule's
 *   seriesQuery finds the series, then its metricsQuery `sum by (<<.GroupBy>>) (<<.Series>>
 *   {<<.LabelMatchers>>})` runs with the HPA's namespace and its target's pods (`pod=~"a|b"`),
 *   grouped by pod: one value per pod, which the HPA averages;
 * - KEDA (charts/megaphone/examples/keda-scaledobjects.yaml): the tier's total, one value, which
 *   KEDA divides by the replica count.
 */
const ADAPTER_RULES: { tier: "edge" | "session"; seriesQuery: string; metric: string }[] = [
  {
    tier: "edge",
    seriesQuery: 'megaphone_edge_connections{namespace!="",pod!=""}',
    metric: "megaphone_edge_connections",
  },
  {
    tier: "session",
    seriesQuery: 'megaphone_session_inbox_lag_entries{namespace!="",pod!=""}',
    metric: "megaphone_session_inbox_lag_entries",
  },
];
const KEDA_QUERIES: { name: string; expr: string }[] = [
  {
    name: "edge ScaledObject (KEDA): connections of the tier",
    expr: 'sum(megaphone_edge_connections{namespace="$namespace", release="$release", tier="edge"})',
  },
  {
    name: "session ScaledObject (KEDA): inbox lag of the tier",
    expr: 'sum(megaphone_session_inbox_lag_entries{namespace="$namespace", release="$release", tier="session"})',
  },
];

/**
 * Panels whose metrics only node pods export (the chart's mode nodes, k8s/components/nodes):
 * evaluated on the nodes' deployment, where each must answer for every node pod.
 */
const ONLY_NODES: Record<string, string> = {
  "Node replies handed over in process":
    "megaphone_node_own_edge_frames_total: a node's member writing to its own edge",
};

const isKubeStateMetrics = (q: PanelQuery) => /\bkube_[a-z_]+\{/.test(q.expr);
const isNodeOnly = (q: PanelQuery) => /\bmegaphone_node_[a-z_]+\{/.test(q.expr);
const finite = (samples: Sample[]) => samples.filter((s) => Number.isFinite(s.value)).length;

describe("e2e: the dashboard's and the HPAs' queries on a real Prometheus", function () {
  this.timeout(60000);
  const dashboard = loadDashboard();
  const queries = panelQueries(dashboard);
  let observed: ObservedMesh;
  let nodes: ObservedMesh;
  /** Where a panel's queries are evaluated: the nodes for ONLY_NODES, else the mesh. */
  const observing = (panel: string) => (panel in ONLY_NODES ? nodes : observed);

  before(async function () {
    this.timeout(180000);
    observed = await ObservedMesh.start();
    const chat = await observed.exercise("dash");
    report(`load: ${chat.sent} chat messages delivered across the edges, plus the one-off events`);
    nodes = await ObservedMesh.start({ nodes: true });
    const nodeChat = await nodes.exercise("dash");
    report(`nodes: ${nodeChat.sent} chat messages delivered across the two nodes, the same events`);
    await observed.prometheus.waitScrapedSince(Date.now());
    await nodes.prometheus.waitScrapedSince(Date.now());
  });

  after(async () => {
    await observed?.stop();
    await nodes?.stop();
  });

  it("lists exactly the kube-state-metrics panels as not evaluable here", () => {
    const kube = [...new Set(queries.filter(isKubeStateMetrics).map((q) => q.panel))];
    assert.deepEqual(kube.sort(), Object.keys(NOT_HERE).sort());
    for (const q of queries.filter((q) => q.panel in NOT_HERE))
      assert.ok(isKubeStateMetrics(q), `${q.panel} ${q.refId} is not a kube-state-metrics query`);
  });

  it("lists exactly the panels on node-only metrics as evaluated on the nodes", () => {
    const nodeOnly = [...new Set(queries.filter(isNodeOnly).map((q) => q.panel))];
    assert.deepEqual(nodeOnly.sort(), Object.keys(ONLY_NODES).sort());
    for (const q of queries.filter((q) => q.panel in ONLY_NODES))
      assert.ok(isNodeOnly(q), `${q.panel} ${q.refId} queries no node-only metric`);
  });

  it("offers this namespace and release in the dashboard's variables", async () => {
    const byName = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    for (const [name, expected] of [
      ["namespace", NAMESPACE],
      ["release", RELEASE],
    ]) {
      const variable = byName.get(name);
      assert.ok(variable, `no variable ${name}`);
      const { selector, label } = parseLabelValues(variableQuery(variable));
      const series = await observed.prometheus.series(substitute(selector, VARIABLES));
      const values = [...new Set(series.map((s) => s[label]))];
      report(`$${name}: ${variableQuery(variable)} -> ${JSON.stringify(values)}`);
      assert.deepEqual(values, [expected]);
    }
  });

  it("answers every panel query with data", async () => {
    const rows: string[] = [];
    const empty: string[] = [];
    for (const q of queries) {
      const expr = substitute(q.expr, VARIABLES);
      const samples = await observing(q.panel).prometheus.query(expr);
      const skipped = NOT_HERE[q.panel];
      const onNodes = ONLY_NODES[q.panel];
      rows.push(
        `${`${q.panel} [${q.refId}]`.padEnd(48)} ${String(samples.length).padStart(3)} series` +
          (skipped ? `  (not evaluable here: ${skipped})` : `, ${finite(samples)} finite`) +
          (onNodes ? `  (on the nodes: ${onNodes})` : ""),
      );
      if (skipped) assert.equal(samples.length, 0, `${q.panel}: kube-state-metrics data here?`);
      else if (finite(samples) === 0)
        empty.push(`${q.panel} [${q.refId}] ${expr} -> ${JSON.stringify(samples)}`);
      if (onNodes) {
        assert.deepEqual(
          samples
            .filter((x) => Number.isFinite(x.value))
            .map((x) => x.metric.pod)
            .sort(),
          nodes.pods("node").sort(),
          `${q.panel}: a value per node pod`,
        );
        report(`  ${samples.map((x) => `${x.metric.pod}: ${x.value.toFixed(3)}`).join(", ")}`);
        const onMesh = await observed.prometheus.query(expr);
        assert.deepEqual(onMesh, [], `${q.panel}: edges and sessions export no node metric`);
      }
    }
    report(`panel query [ref]${" ".repeat(32)}result`);
    rows.forEach((r) => report(r));
    assert.equal(empty.length, 0, `queries without a finite value:\n${empty.join("\n")}`);
  });

  it("answers prometheus-adapter's rules with one value per pod of the tier", async () => {
    for (const rule of ADAPTER_RULES) {
      const pods = observed.pods(rule.tier);
      const found = await observed.prometheus.series(rule.seriesQuery);
      assert.deepEqual(
        [...new Set(found.map((s) => s.pod))].sort(),
        [...pods].sort(),
        `${rule.seriesQuery} finds every ${rule.tier} pod`,
      );
      const expr = `sum by (pod) (${rule.metric}{namespace="${NAMESPACE}",pod=~"${pods.join("|")}"})`;
      const samples = await observed.prometheus.query(expr);
      report(
        `${`${rule.tier} HPA (prometheus-adapter)`.padEnd(52)} ${expr}: ${finite(samples)} finite`,
      );
      assert.deepEqual(
        samples
          .filter((s) => Number.isFinite(s.value))
          .map((s) => s.metric.pod)
          .sort(),
        [...pods].sort(),
        `${expr}: ${JSON.stringify(samples)}`,
      );
    }
  });

  it("answers KEDA's queries with the tier's total", async () => {
    for (const q of KEDA_QUERIES) {
      const samples = await observed.prometheus.query(substitute(q.expr, VARIABLES));
      report(`${q.name.padEnd(52)} ${samples.length} series, ${finite(samples)} finite`);
      assert.equal(finite(samples), 1, `${q.name}: ${JSON.stringify(samples)}`);
    }
  });

  it("selects only this namespace and release: the same queries for another return nothing", async () => {
    for (const other of [
      { ...VARIABLES, namespace: "elsewhere" },
      { ...VARIABLES, release: "another" },
    ]) {
      for (const q of [...queries, ...KEDA_QUERIES.map((k) => ({ panel: k.name, ...k }))]) {
        const samples = await observing(q.panel).prometheus.query(substitute(q.expr, other));
        assert.deepEqual(samples, [], `${q.panel}: ${q.expr} answers for ${JSON.stringify(other)}`);
      }
    }
  });
});
