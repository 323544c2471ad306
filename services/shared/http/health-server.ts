// An HTTP endpoint for probes and scrapes, on its own port: /healthz (the process runs),
// /readyz (it serves: 503 otherwise), /metrics (Prometheus text). The session serves it on
// httpPort; an edge with metricsPort set serves it there, away from its public client port.
import { createServer, type Server } from "node:http";
import type { MetricsRegistry } from "../metrics.js";

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(
  host: string,
  port: number,
  isReady: () => boolean,
  metrics: MetricsRegistry,
): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET") {
      res.writeHead(405).end();
    } else if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    } else if (path === "/readyz") {
      const ready = isReady();
      res
        .writeHead(ready ? 200 : 503, { "content-type": "text/plain" })
        .end(ready ? "ready" : "not ready");
    } else if (path === "/metrics") {
      metrics.metrics().then(
        (body) => res.writeHead(200, { "content-type": metrics.contentType }).end(body),
        (err: unknown) =>
          res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${err}`),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : port,
    close: () =>
      new Promise((resolve) => {
        // Keep-alive sockets of scrapers would hold close() open until they time out.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
