// Renders kustomize directories composed by a throwaway kustomization, as an operator's overlay
// would compose them (resources plus optional components such as k8s/components/c2s), with the
// real `kubectl kustomize`. kustomize refuses absolute paths, so the kustomization names them
// relative to its temporary directory.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { stringify } from "yaml";
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
