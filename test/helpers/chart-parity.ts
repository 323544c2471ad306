// Compares objects of the Helm chart (charts/megaphone) with the kustomize manifests (k8s/) they
// mirror, with the differences that are by design taken out: object labels (helm adds instance,
// version, chart and managed-by), the instance label in selectors, the ConfigMap's name
// (kustomize appends a content hash; helm rolls pods with checksum/config instead), the pod
// annotations helm adds (checksum/*), the image reference (the base names `megaphone`, the chart
// adds its tag), spec.replicas (the base leaves it to overlays, the chart sets
// edge/session.replicas) and the objects only the chart has (the dashboard ConfigMap and the
// helm test Pod). Used by helm-chart.test.ts (parity with k8s/base) and k8s-manifests.test.ts
// (overlay nodes-prod).
import type { K8sObject } from "./kustomize.js";

/** An object with the differences above taken out. */
export function normalize(o: K8sObject): unknown {
  const copy = JSON.parse(JSON.stringify(o)) as K8sObject;
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (value === null || typeof value !== "object") return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (["labels", "matchLabels", "selector"].includes(k) && v && typeof v === "object") {
        const labels = { ...(v as Record<string, unknown>) };
        for (const l of [
          "app.kubernetes.io/instance",
          "app.kubernetes.io/version",
          "app.kubernetes.io/managed-by",
          "app.kubernetes.io/part-of",
          "helm.sh/chart",
        ])
          delete labels[l];
        out[k] = strip(labels);
      } else if (k === "annotations" && v && typeof v === "object")
        out[k] = Object.fromEntries(
          Object.entries(v as Record<string, string>).filter(([a]) => !a.startsWith("checksum/")),
        );
      else if (k === "replicas") continue;
      else if (k === "image" && typeof v === "string") out[k] = v.replace(/:[^/]+$/, "");
      else if (k === "configMapRef") out[k] = { name: "megaphone-config" };
      else out[k] = strip(v);
    }
    return out;
  };
  return strip(copy);
}

/** Kind/name, the ConfigMap's without kustomize's hash suffix. */
export const parityKey = (o: K8sObject): string =>
  `${o.kind}/${o.kind === "ConfigMap" ? o.metadata.name.replace(/-[a-z0-9]{10}$/, "") : o.metadata.name}`;

/** The objects only the chart renders: the helm test Pod and the dashboard ConfigMap. */
export const chartOnly = (o: K8sObject): boolean =>
  o.kind === "Pod" || (o.kind === "ConfigMap" && o.metadata.name.endsWith("-dashboard"));

/** An object normalized, its metadata reduced to its key (namespaces and labels aside). */
export const normalizedByKey = (o: K8sObject): unknown => ({
  ...(normalize(o) as object),
  metadata: { name: parityKey(o) },
});
