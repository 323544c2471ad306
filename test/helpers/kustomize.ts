// Renders a kustomize directory with the real `kubectl kustomize` and parses the objects. No
// cluster is involved. kubectl is on this kind of machine (CI included): the Debian package
// `kubectl` from the Google Cloud CLI repository, part of the machine image. Debian's own
// `kubernetes-client` (1.20) bundles kustomize v2 and is no substitute, so a missing kubectl
// fails the checks with this message rather than skipping them.
import { execFile } from "node:child_process";
import { parseAllDocuments } from "yaml";

/** One rendered Kubernetes object, as plain data. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

const KUBECTL = process.env.KUBECTL ?? "kubectl";
const RENDER_TIMEOUT_MS = 30000;

export const KUBECTL_MISSING =
  "kubectl not found: the manifest checks run `kubectl kustomize` (no cluster needed). Install " +
  "the `kubectl` package of the Google Cloud CLI apt repository (the machine image has it at " +
  "/usr/bin/kubectl) or point KUBECTL at a kubectl of version 1.27 or later.";

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      KUBECTL,
      args,
      { timeout: RENDER_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if ((err as NodeJS.ErrnoException | null)?.code === "ENOENT")
          reject(new Error(KUBECTL_MISSING));
        else if (err) reject(new Error(`${KUBECTL} ${args.join(" ")}: ${err.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

/** kubectl's client version line; rejects with KUBECTL_MISSING when there is none. */
export async function kubectlVersion(): Promise<string> {
  return (await run(["version", "--client"])).trim().split("\n").join("; ");
}

/** The objects `kubectl kustomize dir` renders, in its order. */
export async function kustomize(dir: string): Promise<K8sObject[]> {
  const docs = parseAllDocuments(await run(["kustomize", dir]));
  const objects: K8sObject[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${dir}: ${doc.errors[0].message}`);
    const value: unknown = doc.toJS();
    if (value === null) continue;
    objects.push(value as K8sObject);
  }
  return objects;
}

/** "Kind/name" for messages. */
export function ref(o: K8sObject): string {
  return `${o.kind}/${o.metadata.name}`;
}
