// Renders kustomize directories with components added, with the real `kubectl kustomize`, in the
// two ways an operator can: a throwaway kustomization that wraps them (kustomizeComposed), or the
// directory's own kustomization with the components added to its `components:` list, as the
// README tells (kustomizeWithComponents). kustomize refuses absolute paths, so the kustomizations
// name them relative to their temporary directory.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative, resolve } from "node:path";
import { parse, stringify } from "yaml";
import { kustomize, type K8sObject } from "./kustomize.js";

/** The objects of a kustomization with these resources and components (absolute paths). */
export async function kustomizeComposed(
  resources: string[],
  components: string[],
): Promise<K8sObject[]> {
  const dir = mkdtempSync(join(tmpdir(), "megaphone-kustomize-"));
  try {
    const rel = (p: string) => relative(dir, p);
    writeFileSync(
      join(dir, "kustomization.yaml"),
      stringify({
        apiVersion: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        resources: resources.map(rel),
        components: components.map(rel),
      }),
    );
    return await kustomize(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The objects of the kustomization in `dir` (absolute) with `components` (absolute) added to its
 * own `components:` list, at index `at` (default: the end), everything else of it kept: the
 * directory is copied to a temporary one and the paths it names outside itself are made relative
 * to the copy.
 */
export async function kustomizeWithComponents(
  dir: string,
  components: string[],
  at?: number,
): Promise<K8sObject[]> {
  const copy = mkdtempSync(join(tmpdir(), "megaphone-kustomize-"));
  try {
    cpSync(dir, copy, { recursive: true });
    const file = join(copy, "kustomization.yaml");
    const k = parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    // A path outside the directory, from the copy; a file of the directory stays as it is.
    const rebase = (p: string) => {
      const target = resolve(dir, p);
      return relative(dir, target).startsWith("..") ? relative(copy, target) : p;
    };
    for (const [field, value] of Object.entries(k))
      if (!["resources", "components"].includes(field) && JSON.stringify(value).includes(".."))
        throw new Error(`${dir}: ${field} names a path outside the directory; not supported`);
    const own = ((k.components ?? []) as string[]).map(rebase);
    const added = components.map((c) => {
      if (!isAbsolute(c)) throw new Error(`${c}: an absolute path expected`);
      return relative(copy, c);
    });
    own.splice(at ?? own.length, 0, ...added);
    k.resources = ((k.resources ?? []) as string[]).map(rebase);
    k.components = own;
    writeFileSync(file, stringify(k));
    return await kustomize(copy);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}
