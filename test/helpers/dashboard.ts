// The Grafana dashboard the chart ships (charts/megaphone/dashboards/megaphone.json), read as
// plain data: its panels (rows flattened), every query of every panel, and the queries with
// Grafana's variables replaced so that Prometheus itself can evaluate them.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** The file, relative to the repository root. */
export const DASHBOARD_FILE = "charts/megaphone/dashboards/megaphone.json";

export interface DashboardTarget {
  refId: string;
  expr?: string;
  legendFormat?: string;
  datasource?: { type?: string; uid?: string };
  [field: string]: unknown;
}

export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  fieldConfig?: { defaults: { unit?: string; [field: string]: unknown } };
  targets?: DashboardTarget[];
  /** Only on rows: the panels folded into a collapsed row. */
  panels?: DashboardPanel[];
  [field: string]: unknown;
}

export interface DashboardVariable {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: { type?: string; uid?: string } | null;
  [field: string]: unknown;
}

export interface Dashboard {
  title: string;
  uid: string;
  panels: DashboardPanel[];
  templating: { list: DashboardVariable[] };
  [field: string]: unknown;
}

/** One query of one panel. */
export interface PanelQuery {
  panel: string;
  refId: string;
  expr: string;
  legendFormat?: string;
}

/** The source text of the dashboard file. */
export function dashboardSource(): string {
  return readFileSync(`${ROOT}${DASHBOARD_FILE}`, "utf8");
}

export function loadDashboard(): Dashboard {
  return JSON.parse(dashboardSource()) as Dashboard;
}

/** Every panel, rows included, with the panels of collapsed rows after their row. */
export function allPanels(dashboard: Dashboard): DashboardPanel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every query panel (rows excluded). */
export function queryPanels(dashboard: Dashboard): DashboardPanel[] {
  return allPanels(dashboard).filter((p) => p.type !== "row");
}

export function panelQueries(dashboard: Dashboard): PanelQuery[] {
  return queryPanels(dashboard).flatMap((p) =>
    (p.targets ?? []).map((t) => ({
      panel: p.title,
      refId: t.refId,
      expr: t.expr ?? "",
      legendFormat: t.legendFormat,
    })),
  );
}

/** The query text of a dashboard variable (Grafana keeps it as a string or in `query.query`). */
export function variableQuery(v: DashboardVariable): string {
  return typeof v.query === "string" ? v.query : (v.query?.query ?? "");
}

export interface Substitution {
  namespace: string;
  release: string;
  /** What `$__rate_interval` stands for, a PromQL duration ("1m"). */
  rateInterval: string;
}

/**
 * `expr` as Grafana would send it to Prometheus for these variable values. Only the variables
 * the dashboard uses are known; any other `$` reference is left in place, and PromQL then
 * refuses it, so a new variable cannot slip past the checks unreplaced.
 */
export function substitute(expr: string, s: Substitution): string {
  return expr
    .replaceAll("$__rate_interval", s.rateInterval)
    .replaceAll("$namespace", s.namespace)
    .replaceAll("$release", s.release);
}

/**
 * Grafana's `label_values(<selector>, <label>)` variable query, split into the series selector
 * and the label (Prometheus has no such function: Grafana asks /api/v1/series or
 * /api/v1/label/<label>/values with the selector as match[]).
 */
export function parseLabelValues(query: string): { selector: string; label: string } {
  const m = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(query.trim());
  if (!m) throw new Error(`not a label_values(selector, label) query: ${query}`);
  return { selector: m[1].trim(), label: m[2] };
}
