// bench:bosh-idle — what an idle BOSH session (XEP-0206) costs each tier. N users log in over
// BOSH through the edge of a mesh (Redis, 1 edge, 1 session), send initial presence, and leave
// one empty request held at the edge (the long-poll every BOSH client keeps open); then the RSS
// growth of the edge, the session and Redis is divided by N. The edge keeps only the held
// requests (services/edge/bosh/held-requests.ts); the session state lives in the session tier
// and its snapshots in Redis. Not part of npm test.
//
//   npm run bench:bosh-idle -- [--sessions 2000] [--target mesh:1+1]
import { sampleProcess } from "../services/bench/proc-stats.js";
import { BoshSession } from "../test/helpers/bosh-client.js";
import { option, startTarget } from "./targets.js";

const SESSIONS = Number(option("sessions", "2000"));
const TARGET = option("target", "mesh:1+1");
/** Logins in flight at once (each is four requests in a row). */
const CONCURRENCY = 50;

const rss = (pid: number) => sampleProcess(pid)?.rssBytes ?? 0;

async function main(): Promise<void> {
  // Every session comes from 127.0.0.1: the per-address bounds are for real clients.
  const target = await startTarget(TARGET, {
    users: SESSIONS,
    password: "bench",
    env: {
      MEGAPHONE_UPGRADES_PER_ADDRESS_PER_SECOND: "100000",
      MEGAPHONE_UPGRADE_BURST_PER_ADDRESS: "100000",
      MEGAPHONE_MAX_CONNECTIONS_PER_ADDRESS: "100000",
      MEGAPHONE_MAX_UNAUTHENTICATED_CONNECTIONS_PER_ADDRESS: "100000",
    },
  });
  try {
    const url = target.url
      .split(",")[0]
      .replace(/^ws:/, "http:")
      .replace(/\/[^/]*$/, "/http-bind");
    // startMesh lists the edges first, then the sessions, then Redis.
    const roles = target.pids.map((pid, i) => ({
      pid,
      role: i === 0 ? "edge" : i === target.pids.length - 1 ? "redis" : "session",
    }));
    const before = new Map(roles.map(({ pid }) => [pid, rss(pid)]));
    let next = 1;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next <= SESSIONS) {
          const n = next++;
          const session = await BoshSession.create(url, { wait: "60" });
          await session.login(`bench${n}`, "bench");
          await session.send(`<presence xmlns="jabber:client"/>`);
          // The long-poll: answered when something arrives for the user, or after `wait`.
          void session.send().catch(() => undefined);
        }
      }),
    );
    const loginSeconds = (Date.now() - started) / 1000;
    // Let the last requests reach the edge and be held.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    console.log(
      `bench:bosh-idle: ${SESSIONS} BOSH sessions on ${TARGET}, logged in over ${loginSeconds.toFixed(1)} s, ` +
        `each holding one request; ${new Date().toISOString()}\n`,
    );
    console.log("| process | RSS growth MiB | KiB per BOSH session |");
    console.log("| --- | --- | --- |");
    for (const { pid, role } of roles) {
      const grown = rss(pid) - (before.get(pid) ?? 0);
      console.log(
        `| ${role} (${pid}) | ${(grown / 1048576).toFixed(1)} | ${(grown / 1024 / SESSIONS).toFixed(2)} |`,
      );
    }
  } finally {
    await target.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
