// The default id of a process (edge id, session consumer name) when none is given: derived
// from the host name, which is the pod name on Kubernetes, and the pid (1 in a container, so
// the host name must stay unique on its own). Ids are [a-z0-9-]{1,40} (config.ts). A host name
// too long for that keeps its start for people to read and a hash of the whole name for
// uniqueness: cutting the tail would give every pod of a ReplicaSet the same id, since pod
// names differ only at their end.
import { createHash } from "node:crypto";
import { hostname } from "node:os";

export const MAX_PROCESS_ID_LENGTH = 40;
const HASH_CHARS = 10;

export function defaultProcessId(prefix: string, host = hostname(), pid = process.pid): string {
  const name =
    host
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .replace(/^-+|-+$/g, "") || "host";
  const suffix = `-${pid.toString(36)}`;
  const whole = `${prefix}${name}${suffix}`;
  if (whole.length <= MAX_PROCESS_ID_LENGTH) return whole;
  const hash = createHash("sha256").update(host).digest("hex").slice(0, HASH_CHARS);
  const room = MAX_PROCESS_ID_LENGTH - prefix.length - suffix.length - HASH_CHARS - 1;
  return `${prefix}${name.slice(0, room).replace(/-+$/, "")}-${hash}${suffix}`;
}
