// Where a process allocates: V8's sampling heap profiler, keeping the objects that garbage
// collection has freed since (the default keeps only live ones), so the profile counts every
// allocation, not what survived. Loaded into the services by the benches:
//
//   MEGAPHONE_SERVICE_NODE_ARGS="--import ./dist/bench/alloc-sampler.js" \
//   MEGAPHONE_ALLOC_PROFILE_DIR=prof npm run bench:load-curve -- --targets mesh --rates 2000
//   npm run bench:alloc-report -- prof --messages 40000
//
// The profile is written when the process exits (the benches stop profiled services with
// SIGTERM), as alloc-<role>-<pid>.heapprofile, role being the CLI's first argument.
import { Session } from "node:inspector";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.env.MEGAPHONE_ALLOC_PROFILE_DIR ?? "alloc-profiles";
/** Bytes between samples on average: V8's default is 32 KiB; smaller sees rarer sites. */
const intervalBytes = Number(process.env.MEGAPHONE_ALLOC_PROFILE_INTERVAL ?? 8192);

const session = new Session();
session.connect();
let sampling = false;
session.post("HeapProfiler.enable");
session.post(
  "HeapProfiler.startSampling",
  {
    samplingInterval: intervalBytes,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  },
  (err) => {
    if (err) process.stderr.write(`alloc-sampler: not sampling: ${err.message}\n`);
    else sampling = true;
  },
);

// The in-process inspector answers synchronously, so the profile is written before exit.
process.on("exit", () => {
  if (!sampling) return;
  session.post("HeapProfiler.stopSampling", (err, result) => {
    if (err) return;
    mkdirSync(dir, { recursive: true });
    const role = process.argv[2] ?? "node";
    const file = join(dir, `alloc-${role}-${process.pid}.heapprofile`);
    writeFileSync(file, JSON.stringify(result.profile));
  });
});
