// bench:alloc-report — bytes allocated per message by each profiled process, and the sites
// that allocate them, from the profiles bench/alloc-sampler.ts wrote. Allocation is a figure
// of the work done per message that, unlike CPU time, does not move with the machine's load.
//
//   npm run bench:alloc-report -- DIR [--messages N] [--top 15]
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { option } from "./targets.js";

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const dir = process.argv[2];
if (!dir || dir.startsWith("--")) throw new Error("usage: bench:alloc-report DIR [--messages N]");
const MESSAGES = Number(option("messages", "0"));
const TOP = Number(option("top", "15"));

/** Self bytes by allocating function (name, file, line), and their sum. */
function bytesBySite(root: ProfileNode): { total: number; sites: Map<string, number> } {
  const sites = new Map<string, number>();
  let total = 0;
  const stack = [root];
  for (let node = stack.pop(); node; node = stack.pop()) {
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^.*\/(dist|node_modules)\//, "$1/");
    const site = `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}`;
    if (node.selfSize > 0) sites.set(site, (sites.get(site) ?? 0) + node.selfSize);
    total += node.selfSize;
    stack.push(...node.children);
  }
  return { total, sites };
}

const per = (bytes: number) => (MESSAGES > 0 ? `${Math.round(bytes / MESSAGES)} B/msg` : "");
for (const name of readdirSync(dir)
  .filter((f) => f.endsWith(".heapprofile"))
  .sort()) {
  const profile = JSON.parse(readFileSync(join(dir, name), "utf8")) as { head: ProfileNode };
  const { total, sites } = bytesBySite(profile.head);
  console.log(`\n${name}: ${(total / 2 ** 20).toFixed(1)} MiB allocated ${per(total)}`);
  const top = [...sites].sort((a, b) => b[1] - a[1]).slice(0, TOP);
  for (const [site, bytes] of top)
    console.log(
      `${((bytes / total) * 100).toFixed(1).padStart(5)} % ${per(bytes).padStart(12)}  ${site}`,
    );
}
