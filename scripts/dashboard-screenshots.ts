// Regenerates docs/images/dashboard-*.png: screenshots (headless Chromium) of Prometheus' own
// graph page for the dashboard's key panels, against a real mesh under a few minutes of load.
// No Grafana runs here (it is not in Debian's packages): each picture shows the panel's own
// queries, evaluated by the Prometheus Grafana would ask, drawn by Prometheus' classic UI.
//
//   npm run build && node dist/scripts/dashboard-screenshots.js
//
// Needs redis-server, prometheus and chromium (apt-get install -y chromium). Not run by CI:
// it takes about three minutes. The load: rounds of 1:1 chat with 1 to 4 pairs, each round
// with its one-off events (a refused login, a resumption, a stream error: observed-mesh.ts),
// and one session process paused (SIGSTOP) for 2 s mid-way so that shard lag and latency show
// what a stall looks like.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  loadDashboard,
  queryPanels,
  substitute,
  type Substitution,
} from "../test/helpers/dashboard.js";
import { NAMESPACE, ObservedMesh, RELEASE } from "../test/helpers/observed-mesh.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const IMAGES = join(ROOT, "docs/images");
const CHROMIUM = process.env.CHROMIUM ?? "chromium";
const run = promisify(execFile);

/** The key panels, by title, and the file each is saved to. */
const SHOTS: { panel: string; file: string }[] = [
  { panel: "Connections per edge pod", file: "dashboard-connections.png" },
  { panel: "Logins per second by result", file: "dashboard-logins.png" },
  { panel: "Stanzas per second by kind", file: "dashboard-stanzas.png" },
  { panel: "Delivery latency (edge inbox to socket)", file: "dashboard-delivery-latency.png" },
  { panel: "Shard lag per shard", file: "dashboard-shard-lag.png" },
  { panel: "Event-loop lag per pod", file: "dashboard-event-loop-lag.png" },
  { panel: "Memory per pod", file: "dashboard-memory.png" },
];

/** Pairs chatting in each round, then how long a round chats. */
const ROUNDS = [1, 2, 4, 3, 2, 1];
const ROUND_CHAT_MS = 20000;
const STALL_MS = 2000;

/**
 * `$__rate_interval` for pictures of a few minutes: Grafana would pick 4 s for 1 s scrapes at
 * this zoom; 10 s draws the same shapes with less noise.
 */
const VARIABLES: Substitution = { namespace: NAMESPACE, release: RELEASE, rateInterval: "10s" };

/**
 * One graph for all of a panel's queries: each query's series get a `query` label with its
 * refId (A, B, ...; docs/dashboard.md says which is which), so that series of two queries with
 * the same labels (p50 and p99) stay apart.
 */
function panelExpr(targets: { refId: string; expr?: string }[]): string {
  return targets
    .map(
      (t) => `label_replace(${substitute(t.expr ?? "", VARIABLES)}, "query", "${t.refId}", "", "")`,
    )
    .join(" or ");
}

async function load(observed: ObservedMesh): Promise<void> {
  for (const [i, pairs] of ROUNDS.entries()) {
    const round = observed.exercise(`r${i}`, { pairs, chatMs: ROUND_CHAT_MS, intervalMs: 100 });
    if (i === Math.floor(ROUNDS.length / 2)) {
      // A stall of one session mid-round: its shards' inboxes fill, then drain.
      await new Promise((resolve) => setTimeout(resolve, ROUND_CHAT_MS / 2));
      observed.sessions[0].process.kill("SIGSTOP");
      await new Promise((resolve) => setTimeout(resolve, STALL_MS));
      observed.sessions[0].process.kill("SIGCONT");
    }
    const report = await round;
    console.log(`round ${i}: ${pairs} pairs, ${report.sent} messages, all delivered`);
  }
}

async function screenshot(url: string, file: string): Promise<void> {
  const profile = mkdtempSync(join(tmpdir(), "megaphone-chromium-"));
  try {
    await run(
      CHROMIUM,
      [
        "--headless",
        "--no-sandbox", // root in a container has no user namespace sandbox
        "--disable-gpu",
        "--hide-scrollbars",
        `--user-data-dir=${profile}`,
        "--window-size=960,1000",
        // Virtual time runs the page's scripts and its query until the graph is drawn.
        "--virtual-time-budget=10000",
        `--screenshot=${file}`,
        url,
      ],
      { timeout: 60000 },
    );
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const panels = new Map(queryPanels(loadDashboard()).map((p) => [p.title, p]));
  const observed = await ObservedMesh.start();
  try {
    const startedAt = Date.now();
    await load(observed);
    const endedAt = Date.now();
    await observed.prometheus.waitScrapedSince(endedAt);
    // Every picture shows the load from its start to its end, whenever it is taken. The page
    // takes its end time to the minute: the next minute after the load.
    const endMs = Math.ceil((endedAt + 5000) / 60000) * 60000;
    const seconds = Math.ceil((endMs - startedAt) / 1000) + 5;
    const end = new Date(endMs).toISOString().slice(0, 16).replace("T", " ");
    mkdirSync(IMAGES, { recursive: true });
    for (const { panel, file } of SHOTS) {
      const p = panels.get(panel);
      if (!p) throw new Error(`the dashboard has no panel "${panel}"`);
      const stacked = (p.fieldConfig?.defaults.custom as { stacking?: { mode?: string } })?.stacking
        ?.mode;
      const params = new URLSearchParams({
        "g0.expr": panelExpr(p.targets ?? []),
        "g0.tab": "0",
        "g0.range_input": `${seconds}s`,
        "g0.end_input": end,
        "g0.moment_input": end,
        "g0.stacked": stacked === "normal" ? "1" : "0",
      });
      const path = join(IMAGES, file);
      await screenshot(`${observed.prometheus.url}/graph?${params}`, path);
      console.log(`${file}: ${panel} (${Math.round(statSync(path).size / 1024)} KB)`);
    }
  } finally {
    await observed.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
