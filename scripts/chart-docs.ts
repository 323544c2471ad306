// Keeps the chart's documentation and schema in step with their sources:
// - the values table of charts/megaphone/README.md (between its `values:start` and `values:end`
//   markers) comes from the `# --` comments of values.yaml, one row per documented key;
// - definitions.settings of values.schema.json (what `config`, `edge.config` and
//   `session.config` accept) comes from Megaphone's settings table (services/shared/config.ts):
//   each setting the chart does not set itself, with its type, bounds and help.
// `npm run chart:docs` (node dist/scripts/chart-docs.js --write) rewrites both; without --write it exits 1 when
// either is stale (test/integration/helm-chart.test.ts checks the same).
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isMap, isScalar, isSeq, parseDocument, type Node, type Pair } from "yaml";
import { SETTINGS, type Config } from "../services/shared/config.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const CHART_DIR = `${ROOT}charts/megaphone/`;

/**
 * Settings the templates set themselves, from other values or from the pod: they are refused
 * in `config` so that a value cannot silently fight the template.
 */
export const CHART_OWNED_SETTINGS: (keyof Config)[] = [
  "id", // the pod name (downward API)
  "redis", // the Secret (redis.*)
  "host",
  "port", // edge.port
  "metricsPort", // edge.metricsPort
  "c2sPort", // edge.c2s.port
  "c2sTlsPort", // edge.c2s.tlsPort
  "tlsCert", // edge.c2s.tls.secretName, mounted
  "tlsKey",
  "tlsCertDir", // edge.c2s.tls.sniSecrets, mounted
  "httpPort", // session.httpPort
  "membership", // session.membership
  "members",
  "kubernetesNamespace",
  "kubernetesSessionService",
  "kubernetesApiUrl",
  "shutdownGraceMs", // edge.shutdownGraceMs, session.shutdownGraceMs
  "drainDelayMs", // edge.drainDelayMs
  "drainWindowMs", // edge.drainWindowMs
  "shards", // per process; every pod of a Deployment gets the same environment
  "user", // all-in-one only
];

type JsonSchema = Record<string, unknown>;

/** The JSON schema of one Megaphone setting, from its kind, bounds and rules. */
function settingSchema(key: keyof Config): JsonSchema {
  const s = SETTINGS[key];
  switch (s.kind) {
    case "bool":
      return { type: "boolean", description: s.help };
    case "list":
      return { type: "array", items: { type: "string" }, description: s.help };
    case "string":
      if (key === "logLevel")
        return {
          enum: ["fatal", "error", "warn", "info", "debug", "trace", "silent"],
          description: s.help,
        };
      return { type: "string", description: s.help };
    case "int": {
      if (key === "shardCount") {
        // The settings table's rule is "a power of two": listed, since JSON schema cannot say it.
        const powers: number[] = [];
        for (let n = 1; n <= (s.max ?? 1); n *= 2) powers.push(n);
        return { enum: powers, description: s.help };
      }
      const out: JsonSchema = { type: "integer" };
      if (s.min !== undefined) out.minimum = s.min;
      if (s.max !== undefined) out.maximum = s.max;
      out.description = s.help;
      return out;
    }
  }
}

/** definitions.settings: every setting but the chart's own, by name. */
export function settingsSchema(): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const key of Object.keys(SETTINGS) as (keyof Config)[])
    if (!CHART_OWNED_SETTINGS.includes(key)) properties[key] = settingSchema(key);
  return { type: "object", additionalProperties: false, properties };
}

/** values.schema.json with definitions.settings regenerated (the rest as it is). */
export function schemaText(current: string): string {
  const schema = JSON.parse(current) as { definitions: Record<string, unknown> };
  schema.definitions.settings = settingsSchema();
  return JSON.stringify(schema, null, 2) + "\n";
}

/** One documented value: its dotted path, YAML type, default and `# --` text. */
export interface ValueRow {
  key: string;
  type: string;
  default: string;
  description: string;
}

function typeOf(node: Node | null): string {
  if (isMap(node)) return "object";
  if (isSeq(node)) return "list";
  if (isScalar(node)) {
    const v = node.value;
    if (typeof v === "number") return Number.isInteger(v) ? "int" : "float";
    if (typeof v === "boolean") return "bool";
    return "string";
  }
  return "null";
}

/** The `# --` text of a pair's comment, or undefined when it has none. */
function docOf(
  pair: Pair,
  previous: Pair | undefined,
  mapComment: string | undefined,
): string | undefined {
  // The yaml library keeps a comment above a key on the key, and above the first key of a map
  // on the map: try both.
  const comment =
    (pair.key as Node & { commentBefore?: string | null })?.commentBefore ??
    (previous === undefined ? mapComment : undefined);
  if (!comment) return undefined;
  const lines = comment.split("\n").map((l) => l.replace(/^ ?/, ""));
  const at = lines.findIndex((l) => l.startsWith("-- "));
  if (at < 0) return undefined;
  return lines.slice(at).join(" ").slice(3).replace(/\s+/g, " ").trim();
}

/**
 * The rows of values.yaml, in file order. A key is documented by a `# --` comment right above
 * it; a key without one must be a map whose keys are all documented, unless a documented map
 * contains it (resources.requests.cpu is part of `resources`). Throws naming undocumented keys.
 */
export function valueRows(valuesYaml: string): ValueRow[] {
  const doc = parseDocument(valuesYaml);
  const rows: ValueRow[] = [];
  const missing: string[] = [];
  const walk = (node: Node | null, prefix: string, documented: boolean) => {
    if (!isMap(node)) return;
    const mapComment =
      (node as Node & { commentBefore?: string | null }).commentBefore ?? undefined;
    node.items.forEach((pair, i) => {
      const key = `${prefix}${String((pair.key as { value: unknown }).value)}`;
      const value = pair.value as Node | null;
      const description = docOf(pair, i === 0 ? undefined : node.items[i - 1], mapComment);
      if (description !== undefined) {
        rows.push({
          key,
          type: typeOf(value),
          default: JSON.stringify(value === null ? null : (value.toJSON() as unknown)),
          description,
        });
      }
      if (isMap(value) && value.items.length > 0)
        walk(value, `${key}.`, documented || description !== undefined);
      else if (description === undefined && !documented) missing.push(key);
    });
  };
  walk(doc.contents, "", false);
  if (missing.length > 0)
    throw new Error(`values.yaml keys without a "# --" comment: ${missing.join(", ")}`);
  return rows;
}

const START = "<!-- values:start (generated by scripts/chart-docs.ts from values.yaml) -->";
const END = "<!-- values:end -->";

function cell(text: string): string {
  return text.replace(/\|/g, "\\|");
}

/** The values table as Markdown. */
export function valuesTable(rows: ValueRow[]): string {
  const lines = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"];
  for (const r of rows)
    lines.push(`| \`${r.key}\` | ${r.type} | \`${cell(r.default)}\` | ${cell(r.description)} |`);
  return lines.join("\n");
}

/** README.md with its values region regenerated; throws if the markers are missing. */
export function readmeText(current: string, valuesYaml: string): string {
  const from = current.indexOf(START);
  const to = current.indexOf(END);
  if (from < 0 || to < from) throw new Error(`README.md needs the markers ${START} and ${END}`);
  return `${current.slice(0, from)}${START}\n\n${valuesTable(valueRows(valuesYaml))}\n\n${current.slice(to)}`;
}

function main(write: boolean): number {
  const values = readFileSync(`${CHART_DIR}values.yaml`, "utf8");
  const files = [
    { path: `${CHART_DIR}README.md`, next: (t: string) => readmeText(t, values) },
    { path: `${CHART_DIR}values.schema.json`, next: schemaText },
  ];
  let stale = 0;
  for (const f of files) {
    const current = readFileSync(f.path, "utf8");
    const next = f.next(current);
    if (next === current) continue;
    if (write) {
      writeFileSync(f.path, next);
      console.log(`wrote ${f.path.slice(ROOT.length)}`);
    } else {
      console.error(`${f.path.slice(ROOT.length)} is stale: run npm run chart:docs`);
      stale++;
    }
  }
  return stale === 0 ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url))
  process.exitCode = main(process.argv.includes("--write"));
