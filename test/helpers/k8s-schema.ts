// Checks rendered Kubernetes objects against the API's schemas, with kubernetes-models (its
// models are generated from the Kubernetes OpenAPI spec), in two ways:
// - validate(): the JSON schema validator each model ships. It checks types, required fields
//   and enums, but lets unknown fields through (a misspelt `readinesProbe` passes).
// - excess properties: every object is written as a TypeScript object literal typed with the
//   model's interface (IDeployment, …) and type-checked with the TypeScript compiler, whose
//   excess-property check rejects any field the API does not have, at any depth (it names the
//   first such field of each object; fix it and the next one shows).
// A kind with no model (a CRD, a typo in apiVersion) fails both.
import { fileURLToPath } from "node:url";
import type { K8sObject } from "./kustomize.js";
import { typeCheckSource } from "./type-check.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** kubernetes-models' module for an apiVersion and kind: "apps/v1" + "Deployment". */
function modelModule(o: K8sObject): string {
  return `kubernetes-models/${o.apiVersion}/${o.kind}`;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/** Validates `o` with its kubernetes-models model; throws naming the object and the field. */
export async function validateWithModel(o: K8sObject): Promise<void> {
  const where = `${o.kind}/${o.metadata.name}`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(modelModule(o))) as Record<string, unknown>;
  } catch {
    throw new Error(`${where}: no kubernetes-models model for ${o.apiVersion} ${o.kind}`);
  }
  const Model = mod[o.kind] as ModelClass | undefined;
  if (typeof Model !== "function") throw new Error(`${where}: no model class ${o.kind}`);
  try {
    new Model(o).validate();
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
}

/** A diagnostic of the excess-property check, attributed to the object it is in. */
export interface TypeProblem {
  object: string;
  message: string;
}

/**
 * Type-checks every object as a literal of its model's interface. Nothing is written to disk:
 * the source lives in memory under the repository root (so that `kubernetes-models` resolves
 * from its node_modules). Returns the problems, empty when every object fits its type.
 */
export function excessPropertyProblems(objects: K8sObject[]): TypeProblem[] {
  const file = `${ROOT}k8s/__rendered_objects__.ts`;
  const names = objects.map((o) => `${o.kind}/${o.metadata.name}`);
  // Line i (0-based) imports object i's type; then each object's literal from its first line.
  let source = objects
    .map((o, i) => `import type { I${o.kind} as T${i} } from "${modelModule(o)}";\n`)
    .join("");
  let line = objects.length;
  const starts: number[] = [];
  objects.forEach((o, i) => {
    starts.push(line);
    const literal = `export const o${i}: T${i} = ${JSON.stringify(o, null, 2)};\n`;
    source += literal;
    line += literal.split("\n").length - 1;
  });
  const ownerOf = (at: number): string => {
    if (at < objects.length) return names[at];
    let owner = 0;
    while (owner + 1 < starts.length && starts[owner + 1] <= at) owner++;
    return names[owner];
  };
  return typeCheckSource(file, source).map((d) => ({
    object: d.line !== undefined ? ownerOf(d.line) : (d.fileName ?? "(compiler)"),
    message: d.message,
  }));
}
