// Kubernetes probes and Prometheus metrics on the edge's WebSocket port:
//   GET /healthz  200 while the process serves requests (liveness);
//   GET /readyz   200 only while listening, not stopping, with the bus reachable (readiness);
//   GET /metrics  the edge's metrics in the Prometheus text format;
//   anything else 404.
import type { HttpResponse, TemplatedApp } from "uWebSockets.js";
import { PROMETHEUS_CONTENT_TYPE, type MetricsRegistry } from "../../shared/metrics.js";
import { HTTP_STATUS, type HttpStatus } from "./status.js";

export interface HealthDeps {
  ready(): boolean;
  metrics: MetricsRegistry;
}

const TEXT = "text/plain; charset=utf-8";

export function registerHealthRoutes(app: TemplatedApp, deps: HealthDeps): void {
  app.get("/healthz", (res) => answer(res, HTTP_STATUS.OK, TEXT, "ok"));
  app.get("/readyz", (res) =>
    deps.ready()
      ? answer(res, HTTP_STATUS.OK, TEXT, "ready")
      : answer(res, HTTP_STATUS.SERVICE_UNAVAILABLE, TEXT, "not ready"),
  );
  app.get("/metrics", (res) =>
    answer(res, HTTP_STATUS.OK, PROMETHEUS_CONTENT_TYPE, deps.metrics.render()),
  );
  app.any("/*", (res) => answer(res, HTTP_STATUS.NOT_FOUND, TEXT, "not found"));
}

function answer(res: HttpResponse, status: HttpStatus, contentType: string, body: string): void {
  res.writeStatus(status).writeHeader("Content-Type", contentType).end(body);
}
