// What the manifest checks (the chart and the kustomize component k8s/components/c2s) require of
// TCP c2s on the edges, read from the rendered objects and the Config each edge container would
// start with: the ports Megaphone listens on are named container ports (`xmpp-client`,
// `xmpps-client`) that a Service targets; the certificate files the settings name are there,
// projected from Secrets into a read-only mount without subPath (so Secret updates reach the
// running pod, which reloads them); with c2s off, none of it is rendered.
import assert from "node:assert/strict";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import type { IService } from "kubernetes-models/v1/Service";
import { ofKind, selects } from "./k8s-objects.js";
import type { K8sObject } from "./kustomize.js";
import { configOf, containerPort, tier } from "./megaphone-pods.js";

/** The container port names of the c2s ports (IANA's service names), by setting. */
export const C2S_PORT_NAMES = { c2sPort: "xmpp-client", c2sTlsPort: "xmpps-client" } as const;

/** A file of a Secret as a pod sees it: which Secret and key it is. */
interface SecretFile {
  secret: string;
  key: string;
}

/** The files Secret (or projected Secret) volumes put under each mounted path of `c`. */
function secretFiles(pod: IPodSpec, c: IContainer): Map<string, SecretFile> {
  const files = new Map<string, SecretFile>();
  for (const m of c.volumeMounts ?? []) {
    const v = (pod.volumes ?? []).find((x) => x.name === m.name);
    const sources = v?.secret
      ? [{ name: v.secret.secretName as string, items: v.secret.items }]
      : (v?.projected?.sources ?? []).flatMap((s) =>
          s.secret ? [{ name: s.secret.name as string, items: s.secret.items }] : [],
        );
    if (sources.length === 0) continue;
    assert.equal(m.readOnly, true, `${m.name} is mounted read-only`);
    assert.equal(m.subPath, undefined, `${m.name}: a subPath mount never sees Secret updates`);
    for (const s of sources) {
      // Without items every key is a file; the keys of a kubernetes.io/tls Secret are these.
      const items = s.items ?? [
        { key: "tls.crt", path: "tls.crt" },
        { key: "tls.key", path: "tls.key" },
      ];
      for (const i of items)
        files.set(`${m.mountPath.replace(/\/$/, "")}/${i.path}`, { secret: s.name, key: i.key });
    }
  }
  return files;
}

/**
 * Checks every workload of a render that serves clients (`megaphone edge`, or `megaphone node`
 * in the chart's mode nodes) against the rules above (assertions) and returns one line per
 * workload for the test's report.
 */
export function checkC2s(
  objects: K8sObject[],
  externalSecrets: Record<string, Record<string, string>>,
  command: "edge" | "node" = "edge",
): string[] {
  const lines: string[] = [];
  const edges = tier(objects, command);
  assert.ok(edges.length > 0, `a ${command} Deployment`);
  for (const { w, c } of edges) {
    const cfg = configOf(objects, w, c, externalSecrets);
    const services = ofKind<IService>(objects, "Service").filter((s) =>
      selects({ matchLabels: s.spec?.selector }, w.labels),
    );
    // Every Service port of the edges reaches a port the container declares.
    for (const s of services)
      for (const p of s.spec?.ports ?? [])
        assert.ok(
          (c.ports ?? []).some((x) => x.containerPort === containerPort(c, p.targetPort)),
          `${s.metadata.name}:${p.name} targets ${p.targetPort}, no port of ${w.name}`,
        );
    const served: string[] = [];
    for (const [setting, name] of Object.entries(C2S_PORT_NAMES) as [
      keyof typeof C2S_PORT_NAMES,
      string,
    ][]) {
      const listening = cfg[setting];
      const declared = (c.ports ?? []).filter((p) => p.name === name);
      const exposed = services.flatMap((s) =>
        (s.spec?.ports ?? [])
          .filter((p) => containerPort(c, p.targetPort) === listening && listening > 0)
          .map((p) => ({ s, p })),
      );
      assert.notEqual(listening, 0, `${w.name}: ${setting} 0 would be a random port`);
      if (listening < 0) {
        assert.deepEqual(declared, [], `${w.name}: no ${name} port with ${setting} off`);
        for (const s of services)
          assert.ok(
            !(s.spec?.ports ?? []).some((p) => p.name === name),
            `${s.metadata.name} has a ${name} port with ${setting} off`,
          );
        continue;
      }
      assert.equal(declared.length, 1, `${w.name}: container port ${name}`);
      assert.equal(declared[0].containerPort, listening, `${name} is ${setting}`);
      assert.equal(declared[0].protocol ?? "TCP", "TCP");
      assert.ok(exposed.length > 0, `no Service reaches ${w.name}'s ${name} (${listening})`);
      for (const { s, p } of exposed) {
        assert.equal(p.name, name, `${s.metadata.name}: the port to ${listening} is named ${name}`);
        assert.equal(p.targetPort, name, `${s.metadata.name}: targets the port by name`);
      }
      served.push(
        `${name} ${listening} via ${exposed.map(({ s, p }) => `${s.metadata.name}:${p.port} (${s.spec?.type ?? "ClusterIP"})`).join(", ")}`,
      );
    }
    const files = secretFiles(w.pod, c);
    const env = (c.env ?? []).map((e) => e.name);
    if (served.length === 0) {
      // TLS_TERMINATED_BY_PROXY is a session setting (PLAIN behind a TLS proxy), which a node
      // process has besides its edge's.
      for (const name of env)
        assert.ok(
          !/^MEGAPHONE_(C2S|TLS)_/.test(name) || name === "MEGAPHONE_TLS_TERMINATED_BY_PROXY",
          `${w.name}: ${name} with c2s off`,
        );
      assert.equal(files.size, 0, `${w.name}: Secret files mounted with c2s off`);
      lines.push(`${w.name}: no c2s`);
      continue;
    }
    const tlsNeeded = cfg.c2sTlsPort > 0 || cfg.c2sRequireTls;
    assert.ok(
      !tlsNeeded || cfg.tlsCert || cfg.tlsCertDir,
      `${w.name}: c2s TLS without a certificate`,
    );
    const pairs: string[] = [];
    if (cfg.tlsCert) {
      const [cert, key] = [files.get(cfg.tlsCert), files.get(cfg.tlsKey)];
      assert.ok(cert, `${w.name}: tlsCert ${cfg.tlsCert} is no mounted Secret file`);
      assert.ok(key, `${w.name}: tlsKey ${cfg.tlsKey} is no mounted Secret file`);
      assert.deepEqual([cert.key, key.key], ["tls.crt", "tls.key"]);
      assert.equal(cert.secret, key.secret, "the certificate and its key from one Secret");
      pairs.push(`default from ${cert.secret}`);
    }
    if (cfg.tlsCertDir) {
      const dir = `${cfg.tlsCertDir.replace(/\/$/, "")}/`;
      const inDir = [...files].filter(([path]) => path.startsWith(dir));
      const certs = inDir.filter(([path]) => path.endsWith(".crt"));
      assert.ok(certs.length > 0, `${w.name}: no pair mounted in tlsCertDir ${dir}`);
      assert.equal(inDir.length, certs.length * 2, `${dir}: only <domain>.crt/.key pairs`);
      for (const [path, cert] of certs) {
        const domain = path.slice(dir.length, -".crt".length);
        const key = files.get(`${dir}${domain}.key`);
        assert.ok(key, `${dir}${domain}.key`);
        assert.deepEqual([cert.key, key.key], ["tls.crt", "tls.key"], domain);
        assert.equal(cert.secret, key.secret, `${domain}: one Secret`);
        pairs.push(`${domain} from ${cert.secret}`);
      }
    }
    lines.push(`${w.name}: ${served.join("; ")}; TLS ${pairs.join(", ") || "none (plaintext)"}`);
  }
  return lines;
}
