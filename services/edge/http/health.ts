// Kubernetes probes and Prometheus metrics on the edge's WebSocket port:
//   GET /healthz  200 while the process serves requests (liveness);
//   GET /readyz   200 only while listening, not stopping, with the bus reachable (readiness);
//   GET /metrics  the edge's metrics in the Prometheus text format, unless metricsPort moves
//                 them to a port of their own (shared/http/health-server.ts);
//   anything else 404.
import type { HttpResponse, TemplatedApp } from "uWebSockets.js";
import type { MetricsRegistry } from "../../shared/metrics.js";
import { HTTP_STATUS, type HttpStatus } from "./status.js";

export interface HealthDeps {
  ready(): boolean;
  /** Absent: /metrics is served elsewhere (metricsPort) and answers 404 here. */
  metrics?: MetricsRegistry;
}

const TEXT = "text/plain; charset=utf-8";

export function registerHealthRoutes(app: TemplatedApp, deps: HealthDeps): void {
  app.get("/healthz", (res) => answer(res, HTTP_STATUS.OK, TEXT, "ok"));
  app.get("/readyz", (res) =>
    deps.ready()
      ? answer(res, HTTP_STATUS.OK, TEXT, "ready")
      : answer(res, HTTP_STATUS.SERVICE_UNAVAILABLE, TEXT, "not ready"),
  );
  const { metrics } = deps;
  if (metrics) app.get("/metrics", (res) => answerMetrics(res, metrics));
  app.any("/*", (res) => answer(res, HTTP_STATUS.NOT_FOUND, TEXT, "not found"));
}

/** Rendering is asynchronous: the response may be aborted meanwhile, and is corked when sent. */
function answerMetrics(res: HttpResponse, metrics: MetricsRegistry): void {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  const send = (status: HttpStatus, contentType: string, body: string) => {
    if (!aborted) res.cork(() => answer(res, status, contentType, body));
  };
  metrics.metrics().then(
    (body) => send(HTTP_STATUS.OK, metrics.contentType, body),
    (err: unknown) => send(HTTP_STATUS.INTERNAL_SERVER_ERROR, TEXT, `metrics failed: ${err}`),
  );
}

function answer(res: HttpResponse, status: HttpStatus, contentType: string, body: string): void {
  res.writeStatus(status).writeHeader("Content-Type", contentType).end(body);
}
