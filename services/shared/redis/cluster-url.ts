// The URL form that selects Redis Cluster:
//   redis+cluster://[user[:password]@]host:port[,host:port...]
// The hosts are seeds: the client asks any of them for the slot map and then talks to every
// primary it names. Giving several seeds lets a process start while one of them is down.

export interface ClusterUrl {
  seeds: { host: string; port: number }[];
  username?: string;
  password?: string;
}

export const CLUSTER_SCHEME = "redis+cluster://";

/** The seeds and credentials of a `redis+cluster://` URL; undefined for any other URL. */
export function parseClusterUrl(url: string): ClusterUrl | undefined {
  if (!url.startsWith(CLUSTER_SCHEME)) return undefined;
  let rest = url.slice(CLUSTER_SCHEME.length).replace(/\/$/, "");
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    const userInfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userInfo.indexOf(":");
    username = decodeURIComponent(colon >= 0 ? userInfo.slice(0, colon) : userInfo) || undefined;
    if (colon >= 0) password = decodeURIComponent(userInfo.slice(colon + 1));
  }
  const seeds = rest.split(",").map((seed) => {
    const match = /^([^:/]+|\[[^\]]+\]):(\d{1,5})$/.exec(seed);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535)
      throw new Error(
        `bad Redis Cluster seed "${seed}": expected ${CLUSTER_SCHEME}host:port[,host:port...]`,
      );
    return { host: match[1].replace(/^\[|\]$/g, ""), port };
  });
  return { seeds, username, password };
}
