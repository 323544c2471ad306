// Starts a private redis-server on a free port for a test run (never the machine's 6379).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, Redis } from "ioredis";
import { parseClusterUrl } from "../../services/shared/redis/cluster-url.js";

export interface RedisServer {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** `extraArgs` are more redis-server options (e.g. cluster mode); the data dir is its cwd. */
export async function startRedis(extraArgs: string[] = []): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "megaphone-redis-"));
  const child = spawn(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      // As the chart runs it (charts/megaphone/templates/redis.yaml): small per-user hashes
      // stay listpacks.
      "--hash-max-listpack-entries",
      "128",
      "--hash-max-listpack-value",
      "256",
      ...extraArgs,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (b: Buffer) => (output += b.toString()));
  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`));
    child.once("exit", onExit);
    child.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        err.code === "ENOENT"
          ? new Error(
              "redis-server is not installed: the tests need it (apt-get install redis-server)",
            )
          : err,
      ),
    );
    const check = (b: Buffer) => {
      if (b.toString().includes("Ready to accept connections")) {
        child.stdout?.off("data", check);
        child.off("exit", onExit);
        resolve();
      }
    };
    child.stdout?.on("data", check);
  });
  const url = `redis://127.0.0.1:${port}`;
  return {
    url,
    port,
    process: child,
    async stop() {
      // A server killed by a signal has a signalCode and no exitCode: it has exited already.
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let prefixSerial = 0;
/** A key prefix unique to one test, so tests sharing a server never see each other's keys. */
export function uniquePrefix(): string {
  return `t${process.pid}x${++prefixSerial}`;
}

/**
 * A test's own client. For a redis+cluster:// URL (a mesh on MEGAPHONE_TEST_REDIS=cluster) it
 * is an ioredis Cluster, typed as Redis so that tests written for one server run unchanged:
 * they use the commands both share, each on keys of one slot.
 */
export function connect(url: string): Redis {
  const cluster = parseClusterUrl(url);
  if (cluster)
    return new Cluster(cluster.seeds, {
      enableAutoPipelining: true,
      redisOptions: { maxRetriesPerRequest: 2 },
    }) as unknown as Redis;
  return new Redis(url, { enableAutoPipelining: true, maxRetriesPerRequest: 2 });
}
