// Reading rendered manifests the way the cluster would: the pods each workload makes, the
// environment a container gets (ConfigMaps, Secrets and the downward API resolved), and which
// pods a label selector picks. Used by the manifest checks; objects are already validated
// against their schemas, so the kubernetes-models interfaces describe them.
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IStatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import { ref, type K8sObject } from "./kustomize.js";

/** A Deployment or StatefulSet with what its pods look like. */
export interface Workload {
  object: K8sObject;
  kind: "Deployment" | "StatefulSet";
  name: string;
  namespace: string;
  labels: Record<string, string>;
  pod: IPodSpec;
  /** A name such a pod could get: Deployment <name>-<10-char hash>-<5 chars>, StatefulSet <name>-0. */
  examplePodName: string;
}

export function workloads(objects: K8sObject[]): Workload[] {
  const out: Workload[] = [];
  for (const o of objects) {
    if (o.kind !== "Deployment" && o.kind !== "StatefulSet") continue;
    const w = o as unknown as IDeployment | IStatefulSet;
    const template = w.spec?.template;
    if (!template?.spec) throw new Error(`${ref(o)} has no pod template`);
    out.push({
      object: o,
      kind: o.kind,
      name: o.metadata.name,
      namespace: o.metadata.namespace ?? "default",
      labels: (template.metadata?.labels ?? {}) as Record<string, string>,
      pod: template.spec,
      // The longest a ReplicaSet hash gets (10) and the 5-character pod suffix.
      examplePodName:
        o.kind === "Deployment" ? `${o.metadata.name}-5d9f8c7b6f-x2x4z` : `${o.metadata.name}-0`,
    });
  }
  return out;
}

/** Every container of a pod, init containers included. */
export function containers(pod: IPodSpec): IContainer[] {
  return [...(pod.initContainers ?? []), ...pod.containers];
}

/** The objects of one kind. */
export function ofKind<T>(objects: K8sObject[], kind: string): (K8sObject & T)[] {
  return objects.filter((o) => o.kind === kind) as (K8sObject & T)[];
}

/** Whether matchLabels picks a pod with `labels` (matchExpressions are not used here). */
export function selects(
  selector: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } | undefined,
  labels: Record<string, string>,
): boolean {
  if (!selector) return false;
  if (selector.matchExpressions?.length) throw new Error("matchExpressions are not read here");
  const wanted = Object.entries(selector.matchLabels ?? {});
  return wanted.length > 0 && wanted.every(([k, v]) => labels[k] === v);
}

/** A Secret's or ConfigMap's string data (Secret `data` is base64). */
function dataOf(o: K8sObject): Record<string, string> {
  const out: Record<string, string> = {};
  const data = (o.data ?? {}) as Record<string, string>;
  for (const [k, v] of Object.entries(data))
    out[k] = o.kind === "Secret" ? Buffer.from(v, "base64").toString("utf8") : v;
  Object.assign(out, (o.stringData ?? {}) as Record<string, string>);
  return out;
}

export interface EnvContext {
  objects: K8sObject[];
  workload: Workload;
  /** Secrets the operator creates outside the render, with a stand-in value for each key. */
  externalSecrets: Record<string, Record<string, string>>;
}

/**
 * The environment `container` starts with: envFrom ConfigMaps and Secrets, then env (later
 * entries win, as in Kubernetes). Every reference must resolve to an object of the render (or
 * a declared external Secret) and a key it has: a dangling one throws, naming it.
 */
export function resolveEnv(container: IContainer, ctx: EnvContext): Record<string, string> {
  const where = `${ctx.workload.kind}/${ctx.workload.name} container ${container.name}`;
  const find = (kind: string, name: string): Record<string, string> => {
    const o = ctx.objects.find((x) => x.kind === kind && x.metadata.name === name);
    if (o) return dataOf(o);
    const external = kind === "Secret" ? ctx.externalSecrets[name] : undefined;
    if (external) return external;
    throw new Error(`${where}: ${kind} ${name} is neither in the render nor declared external`);
  };
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, find("ConfigMap", from.configMapRef.name as string));
    if (from.secretRef) Object.assign(env, find("Secret", from.secretRef.name as string));
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef) {
      const path = e.valueFrom.fieldRef.fieldPath;
      if (path === "metadata.name") env[e.name] = ctx.workload.examplePodName;
      else if (path === "metadata.namespace") env[e.name] = ctx.workload.namespace;
      else throw new Error(`${where}: ${e.name} from ${path} is not read here`);
    } else if (e.valueFrom?.secretKeyRef || e.valueFrom?.configMapKeyRef) {
      const sel = (e.valueFrom.secretKeyRef ?? e.valueFrom.configMapKeyRef) as {
        name: string;
        key: string;
      };
      const data = find(e.valueFrom.secretKeyRef ? "Secret" : "ConfigMap", sel.name);
      if (!(sel.key in data))
        throw new Error(`${where}: ${e.name}: ${sel.name} has no key ${sel.key}`);
      env[e.name] = data[sel.key];
    } else throw new Error(`${where}: ${e.name} has no value this check can read`);
  }
  return env;
}
