// CORS for /http-bind (Fetch standard §3.2), so that a web client served from another origin
// can use BOSH: none by default (no headers: only same-origin pages and non-browsers), any
// origin with "*", or a list of origins, each answered with its own Allow-Origin.
export type CorsPolicy =
  { kind: "none" } | { kind: "any" } | { kind: "list"; origins: Set<string> };

/** Parses config.boshCorsOrigins: "", "*", or "https://a.example, https://b.example". */
export function parseCorsOrigins(spec: string): CorsPolicy {
  const origins = spec
    .split(",")
    .map((o) => o.trim().toLowerCase().replace(/\/+$/, ""))
    .filter((o) => o !== "");
  if (origins.length === 0) return { kind: "none" };
  if (origins.includes("*")) return { kind: "any" };
  return { kind: "list", origins: new Set(origins) };
}

/** Seconds a browser may cache a preflight's answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 86400;

/** The CORS headers for a request from `origin` (empty: none); `preflight` for OPTIONS. */
export function corsHeaders(
  policy: CorsPolicy,
  origin: string,
  preflight: boolean,
): [string, string][] {
  if (policy.kind === "none") return [];
  const headers: [string, string][] = [];
  if (policy.kind === "any") headers.push(["Access-Control-Allow-Origin", "*"]);
  else if (origin !== "" && policy.origins.has(origin.toLowerCase().replace(/\/+$/, "")))
    headers.push(["Access-Control-Allow-Origin", origin], ["Vary", "Origin"]);
  else return [];
  if (preflight)
    headers.push(
      ["Access-Control-Allow-Methods", "GET, POST, OPTIONS"],
      ["Access-Control-Allow-Headers", "Content-Type"],
      ["Access-Control-Max-Age", String(PREFLIGHT_MAX_AGE_SECONDS)],
    );
  return headers;
}
