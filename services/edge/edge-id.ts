// An edge id is part of every connection id and names the edge's inbox, so it must be unique
// among live edges. Without --id it is derived from the host name (the pod name on Kubernetes)
// and the pid, kept to the [a-z0-9-]{1,40} that config.ts accepts.
import { hostname } from "node:os";

const MAX_ID_LENGTH = 40;

export function defaultEdgeId(host = hostname(), pid = process.pid): string {
  const suffix = `-${pid.toString(36)}`;
  const base =
    host
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, MAX_ID_LENGTH - suffix.length) || "edge";
  return base + suffix;
}
