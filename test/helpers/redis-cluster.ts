// Starts a private Redis Cluster for a test run: three primaries (no replicas) on free ports,
// each a real redis-server in cluster mode with its own data dir, joined by
// `redis-cli --cluster create`. Megaphone reaches it through a `redis+cluster://` URL.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { until } from "./poll.js";
import { freePort, startRedis, type RedisServer } from "./redis-server.js";

const run = promisify(execFile);

/** What Redis and ioredis say when the keys of one command, script or pipeline span slots. */
export const CROSS_SLOT = /CROSSSLOT|should belong to the same slot/;

/** Primaries in the test cluster: the least Redis Cluster accepts. */
const PRIMARIES = 3;
/** How long `redis-cli --cluster create` and the nodes' agreement may take. */
const FORM_TIMEOUT_MS = 20000;

export interface RedisCluster {
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3` */
  url: string;
  nodes: RedisServer[];
  stop(): Promise<void>;
}

/** Runs `query` on a connection of its own to one node (not through the cluster client). */
async function onNode<T>(node: RedisServer, query: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(node.url, { maxRetriesPerRequest: 1 });
  try {
    return await query(client);
  } finally {
    client.disconnect();
  }
}

/** A reply of `field:value` lines (CLUSTER INFO, INFO) as a map. */
function fieldsOf(text: string): Map<string, string> {
  return new Map(
    text
      .split("\r\n")
      .filter((line) => line.includes(":"))
      .map((line) => line.split(":", 2) as [string, string]),
  );
}

function clusterInfo(node: RedisServer): Promise<Map<string, string>> {
  return onNode(node, async (client) => fieldsOf((await client.call("CLUSTER", "INFO")) as string));
}

export async function startRedisCluster(): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  try {
    // The config file is relative to the node's data dir (redis-server's cwd), so each node
    // has its own and none survives the run. The cluster bus port is chosen too: by default it
    // is the client port + 10000, which may be taken or past 65535 for a free port.
    // A port found free can be taken before the node binds it (by another node's choice made
    // at the same time, or by another process): such a node is started again on new ports.
    const startNode = async (attempt = 1): Promise<RedisServer> => {
      try {
        return await startRedis([
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          "nodes.conf",
          "--cluster-port",
          String(await freePort()),
        ]);
      } catch (err) {
        if (attempt >= 3 || !String(err).includes("Address already in use")) throw err;
        return startNode(attempt + 1);
      }
    };
    const started = await Promise.allSettled(Array.from({ length: PRIMARIES }, () => startNode()));
    for (const node of started) if (node.status === "fulfilled") nodes.push(node.value);
    const failed = started.find((node) => node.status === "rejected");
    if (failed) throw failed.reason;
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
    await run(
      "redis-cli",
      ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"],
      { timeout: FORM_TIMEOUT_MS },
    );
    // `create` returns once the slots are assigned; every node must also know every other and
    // see all slots served before a client's first slot map is complete.
    await until(
      async () => {
        const infos = await Promise.all(nodes.map(clusterInfo));
        return infos.every(
          (info) =>
            info.get("cluster_state") === "ok" &&
            info.get("cluster_slots_ok") === "16384" &&
            info.get("cluster_known_nodes") === String(PRIMARIES),
        );
      },
      "cluster_state:ok on every node",
      FORM_TIMEOUT_MS,
      50,
    );
    return { url: `redis+cluster://${addresses.join(",")}`, nodes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * How many commands the cluster refused with CROSSSLOT since it started, summed over the
 * nodes (INFO errorstats). A refusal counts even where the caller logged it and retried.
 */
export async function crossSlotErrors(cluster: RedisCluster): Promise<number> {
  const infos = await Promise.all(
    cluster.nodes.map((node) => onNode(node, async (c) => fieldsOf(await c.info("errorstats")))),
  );
  return infos.reduce(
    (sum, info) =>
      sum + Number(/count=(\d+)/.exec(info.get("errorstat_CROSSSLOT") ?? "")?.[1] ?? 0),
    0,
  );
}

/** The number of keys each node holds (DBSIZE), in node order. */
export async function keysPerNode(cluster: RedisCluster): Promise<number[]> {
  return Promise.all(cluster.nodes.map((node) => onNode(node, (client) => client.dbsize())));
}
