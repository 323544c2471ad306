// What the manifest checks (k8s/ with kustomize, charts/megaphone with helm) need to know about
// Megaphone's own containers in rendered objects: which tier a container runs, the Config it
// would start with (through Megaphone's real parser), and how long its preStop holds it.
import assert from "node:assert/strict";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { Config } from "../../services/shared/config.js";
import { parseArgs } from "../../services/shared/config-parse.js";
import { containers, resolveEnv, workloads, type Workload } from "./k8s-objects.js";
import type { K8sObject } from "./kustomize.js";

/**
 * How long a megaphone process may outlive shutdownGraceMs after SIGTERM: onShutdown in
 * services/cli/services.ts exits at graceMs + 2000 whatever hangs.
 */
export const EXIT_AFTER_GRACE_MS = 2000;

/** The megaphone command a container runs (`edge`, `session`, `probe`), or undefined for others. */
export function megaphoneCommand(c: IContainer): string | undefined {
  const image = c.image ?? "";
  return /(^|\/)megaphone(:|@|$)/.test(image) ? c.args?.[0] : undefined;
}

/** Workloads running `megaphone <command>`, with that container. */
export function tier(objects: K8sObject[], command: string): { w: Workload; c: IContainer }[] {
  const out: { w: Workload; c: IContainer }[] = [];
  for (const w of workloads(objects))
    for (const c of containers(w.pod)) if (megaphoneCommand(c) === command) out.push({ w, c });
  return out;
}

/** The Config a megaphone container starts with, through the real parser (throws as it would). */
export function configOf(
  objects: K8sObject[],
  w: Workload,
  c: IContainer,
  externalSecrets: Record<string, Record<string, string>>,
): Config {
  const env = resolveEnv(c, { objects, workload: w, externalSecrets });
  return parseArgs((c.args ?? []).slice(1), env).config;
}

/** Milliseconds a preStop hook holds the container before SIGTERM: exec sleep or sleep action. */
export function preStopMs(c: IContainer): number {
  const hook = c.lifecycle?.preStop;
  if (!hook) return 0;
  if (hook.sleep) return hook.sleep.seconds * 1000;
  const cmd = hook.exec?.command ?? [];
  assert.ok(cmd[0] === "sleep" && /^\d+$/.test(cmd[1] ?? ""), `preStop ${cmd.join(" ")}`);
  return Number(cmd[1]) * 1000;
}

export function containerPort(
  c: IContainer,
  port: number | string | undefined,
): number | undefined {
  if (typeof port === "number") return port;
  return c.ports?.find((p) => p.name === port)?.containerPort;
}
