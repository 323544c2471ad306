// README's "Metrics reference" table, read the way the metrics tests compare it with /metrics.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const README = fileURLToPath(new URL("../../../README.md", import.meta.url));

/** The rows of README's "Metrics reference" table: name → { type, tier }. */
export async function readmeMetrics(): Promise<Map<string, { type: string; tier: string }>> {
  const text = await readFile(README, "utf8");
  const start = text.indexOf("\n## Metrics reference");
  assert.ok(start >= 0, "README has a Metrics reference section");
  const end = text.indexOf("\n## ", start + 1);
  const rows = new Map<string, { type: string; tier: string }>();
  for (const line of text.slice(start, end < 0 ? undefined : end).split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    const name = /^`(megaphone_[a-z_]+)`$/.exec(cells[1] ?? "")?.[1];
    if (!name) continue;
    assert.ok(!rows.has(name), `${name} is listed once`);
    rows.set(name, { type: cells[2], tier: cells[3] });
  }
  return rows;
}
