// The Grafana dashboard the chart ships, checked without a Grafana (none can be installed
// here): against the published dashboard schema (@grafana/schema's types, with the TypeScript
// compiler: dashboard-schema.ts), then what a Megaphone dashboard needs: every panel and query
// on the `datasource` variable, every selector scoped to $namespace and $release, a layout
// whose panels do not overlap, units on every panel, the rows and panels the issue asks for.
// Whether the queries return data is the job of test/e2e/dashboard-prometheus.test.ts.
import assert from "node:assert/strict";
import {
  allPanels,
  dashboardSource,
  loadDashboard,
  panelQueries,
  queryPanels,
  variableQuery,
  type DashboardPanel,
} from "../helpers/dashboard.js";
import { dashboardSchemaProblems } from "../helpers/dashboard-schema.js";
import { report } from "../helpers/report.js";

const DATASOURCE = { type: "prometheus", uid: "${datasource}" };
const GRID_COLUMNS = 24;

/** Grafana unit ids the dashboard may use (a misspelt unit shows raw numbers, silently). */
const UNITS = new Set(["short", "s", "bytes", "Bps", "cps", "ops", "percentunit"]);

/** The rows, in order, with the metrics their panels show. */
const ROWS: Record<string, RegExp> = {
  Edge: /^megaphone_edge_/,
  // Shard lag per shard is sampled by the edges, but it is about the shards.
  Session: /^megaphone_(session_|edge_shard_)/,
  // Only node pods (mode nodes) export these.
  Node: /^megaphone_node_/,
  Redis: /^megaphone_redis_/,
  Runtime: /^(nodejs_|process_|up$|kube_)/,
};

/**
 * The panel list, each as the metrics that show it: the dashboard must query all of
 * them (one panel may show several, several panels may share one).
 */
const REQUIRED_METRICS: Record<string, string[]> = {
  "connections per edge pod and total": ["megaphone_edge_connections"],
  "logins/s and failures by reason": ["megaphone_session_logins_total"],
  "stanzas/s by kind": ["megaphone_session_stanzas_total"],
  "delivery latency p50/p99": ["megaphone_edge_delivery_delay_seconds_bucket"],
  "handler latency p50/p99": ["megaphone_session_handler_duration_seconds_bucket"],
  "shard lag per shard and per owner": [
    "megaphone_edge_shard_inbox_lag",
    "megaphone_session_inbox_lag_entries",
  ],
  "Redis latency": ["megaphone_redis_command_duration_seconds_bucket"],
  "pods per tier": ["up"],
  "HPA desired vs current": [
    "kube_horizontalpodautoscaler_status_desired_replicas",
    "kube_horizontalpodautoscaler_status_current_replicas",
  ],
  "resumptions and hibernated sessions": [
    "megaphone_session_resumptions_total",
    "megaphone_session_hibernated_sessions",
  ],
  "stream errors by condition": ["megaphone_session_stream_errors_total"],
  "event-loop lag": ["nodejs_eventloop_lag_p99_seconds"],
  "memory per pod": ["process_resident_memory_bytes"],
};

/**
 * Every series selector of a query: a metric name and its `{...}` matchers. Metric names are
 * recognised by their prefixes (all the dashboard's metrics have one of these); a name without
 * braces gets an empty matcher list, which the scoping check then rejects.
 */
function selectors(expr: string): { metric: string; matchers: string }[] {
  const found: { metric: string; matchers: string }[] = [];
  const re = /\b((?:megaphone|nodejs|process|kube)_[a-zA-Z0-9_]+|up)\b(\{[^}]*\})?/g;
  for (const m of expr.matchAll(re)) found.push({ metric: m[1], matchers: m[2] ?? "" });
  return found;
}

/** kube-state-metrics series carry no release label: its HPAs are matched by name instead. */
function scoped(s: { metric: string; matchers: string }): boolean {
  if (!s.matchers.includes('namespace="$namespace"')) return false;
  if (s.metric.startsWith("kube_horizontalpodautoscaler_"))
    return s.matchers.includes('horizontalpodautoscaler=~"$release');
  return s.matchers.includes('release="$release"');
}

function overlaps(a: DashboardPanel, b: DashboardPanel): boolean {
  const p = a.gridPos;
  const q = b.gridPos;
  return p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h;
}

describe("integration: the Grafana dashboard (charts/megaphone/dashboards/megaphone.json)", () => {
  const dashboard = loadDashboard();
  const panels = queryPanels(dashboard);
  const queries = panelQueries(dashboard);

  it("fits @grafana/schema's Dashboard type: no unknown, missing or mistyped field", function () {
    this.timeout(30000);
    const problems = dashboardSchemaProblems(dashboardSource());
    report(
      `${panels.length} panels, ${queries.length} queries type-checked: ${problems.length} problems`,
    );
    assert.deepEqual(
      problems.map((p) => `line ${p.line}: ${p.message}`),
      [],
    );
  });

  it("the schema check rejects a misspelt field, a wrong enum value and a wrong type", function () {
    this.timeout(30000);
    // Mutations of the valid dashboard, each in another panel (the nth occurrence of `from`),
    // checked in one compilation: each must give a problem naming it on the line it touched.
    const mutations: { from: string; to: string; nth: number; message: RegExp }[] = [
      { from: '"showLegend": true', to: '"showLegnd": true', nth: 1, message: /showLegnd/ },
      {
        from: '"mode": "palette-classic"',
        to: '"mode": "palette-clasic"',
        nth: 4,
        message: /palette-clasic/,
      },
      { from: '"unit": "s"', to: '"unit": 1', nth: 2, message: /number.*string/s },
      { from: '"type": "timeseries"', to: '"type": "timeseriez"', nth: 9, message: /timeseriez/ },
    ];
    let source = dashboardSource();
    const lines: number[] = [];
    for (const { from, to, nth } of mutations) {
      let at = -1;
      for (let i = 0; i < nth; i++) at = source.indexOf(from, at + 1);
      assert.ok(at >= 0, `the dashboard has no ${nth}th ${from}`);
      lines.push(source.slice(0, at).split("\n").length);
      source = source.slice(0, at) + to + source.slice(at + from.length);
    }
    const problems = dashboardSchemaProblems(source);
    mutations.forEach(({ to, message }, i) =>
      assert.ok(
        problems.some((p) => message.test(p.message) && p.line === lines[i]),
        `${to} (line ${lines[i]}) not caught: ${JSON.stringify(problems)}`,
      ),
    );
  });

  it("has the datasource, namespace and release variables, chained", () => {
    const [ds, namespace, release] = dashboard.templating.list;
    assert.equal(ds?.name, "datasource");
    assert.equal(ds.type, "datasource");
    assert.equal(ds.query, "prometheus");
    for (const v of [namespace, release]) {
      assert.equal(v?.type, "query");
      assert.deepEqual(v.datasource, DATASOURCE, `${v.name}'s datasource`);
      assert.match(variableQuery(v), /^label_values\(megaphone_build_info(\{.*\})?, \w+\)$/);
    }
    assert.equal(namespace.name, "namespace");
    assert.equal(release.name, "release");
    // Releases of the chosen namespace only.
    assert.match(variableQuery(release), /\{namespace="\$namespace"\}, release\)$/);
  });

  it("gives every panel id and title once", () => {
    const ids = allPanels(dashboard).map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `ids ${ids.join(",")}`);
    const titles = allPanels(dashboard).map((p) => p.title);
    assert.equal(new Set(titles).size, titles.length, `titles ${titles.join(", ")}`);
  });

  it("queries the datasource variable from every panel and every query", () => {
    for (const p of panels) {
      assert.deepEqual(p.datasource, DATASOURCE, `${p.title}'s datasource`);
      assert.ok((p.targets ?? []).length > 0, `${p.title} has no query`);
      for (const t of p.targets ?? [])
        assert.deepEqual(t.datasource, DATASOURCE, `${p.title} ${t.refId}'s datasource`);
    }
  });

  it("scopes every series selector of every query to $namespace and $release", () => {
    for (const q of queries) {
      const found = selectors(q.expr);
      assert.ok(found.length > 0, `${q.panel} ${q.refId}: no metric in ${q.expr}`);
      for (const s of found)
        assert.ok(scoped(s), `${q.panel} ${q.refId}: ${s.metric}${s.matchers} is not scoped`);
      // Grafana's interval variable, not a fixed window, so zooming out keeps rates smooth.
      if (/\[[^\]]*\]/.test(q.expr))
        assert.match(q.expr, /\[\$__rate_interval\]/, `${q.panel} ${q.refId}'s range`);
    }
    // The check itself: an unscoped selector is caught.
    assert.ok(!selectors('sum(up{namespace="$namespace"})').every(scoped));
    assert.ok(!selectors("sum(megaphone_edge_connections)").every(scoped));
  });

  it("lays panels out on the 24-column grid without overlaps", () => {
    const all = allPanels(dashboard);
    for (const p of all) {
      const { x, y, w, h } = p.gridPos;
      assert.ok(x >= 0 && w > 0 && x + w <= GRID_COLUMNS && y >= 0 && h > 0, `${p.title}`);
    }
    for (let i = 0; i < all.length; i++)
      for (let j = i + 1; j < all.length; j++)
        assert.ok(!overlaps(all[i], all[j]), `${all[i].title} overlaps ${all[j].title}`);
  });

  it("groups the panels in the edge, session, node, Redis and runtime rows, by their metrics", () => {
    const rows = dashboard.panels.filter((p) => p.type === "row");
    assert.deepEqual(
      rows.map((r) => r.title),
      Object.keys(ROWS),
    );
    // Top to bottom, a panel belongs to the row above it, and queries that row's metrics.
    const ordered = [...dashboard.panels].sort(
      (a, b) => a.gridPos.y - b.gridPos.y || a.gridPos.x - b.gridPos.x,
    );
    assert.equal(ordered[0].type, "row", "a panel above the first row");
    let row = "";
    const counts = new Map<string, number>();
    for (const p of ordered) {
      if (p.type === "row") {
        row = p.title;
        continue;
      }
      counts.set(row, (counts.get(row) ?? 0) + 1);
      for (const t of p.targets ?? [])
        for (const s of selectors(t.expr ?? ""))
          assert.match(s.metric, ROWS[row], `${p.title} (row ${row}) queries ${s.metric}`);
    }
    for (const title of Object.keys(ROWS)) assert.ok(counts.get(title), `row ${title} is empty`);
  });

  it("sets a known unit on every panel", () => {
    for (const p of panels) {
      const unit = p.fieldConfig?.defaults.unit;
      assert.ok(unit && UNITS.has(unit), `${p.title}: unit ${unit}`);
    }
  });

  it("shows every panel the issue asks for", () => {
    const used = new Set(queries.flatMap((q) => selectors(q.expr).map((s) => s.metric)));
    for (const [panel, metrics] of Object.entries(REQUIRED_METRICS))
      for (const metric of metrics) assert.ok(used.has(metric), `${panel}: no query on ${metric}`);
  });
});
