// bench/alloc-sampler.ts and bench:alloc-report on a real Node process: the profile counts what
// was allocated and freed, not only what is still live at exit, and the report names the site.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const SAMPLER = fileURLToPath(new URL("../../bench/alloc-sampler.js", import.meta.url));
const REPORT = fileURLToPath(new URL("../../bench/alloc-report.js", import.meta.url));

describe("bench: allocation sampler and report", function () {
  this.timeout(30000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "megaphone-alloc-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("counts 64 MiB of short-lived arrays per call site and reports bytes per message", async () => {
    // 4,096 arrays of 16 KiB, each garbage at once: none survives to the exit.
    const program = join(dir, "garbage.cjs");
    writeFileSync(
      program,
      `function allocateGarbage() { let kept = 0; for (let i = 0; i < 4096; i++) kept += new Array(2048).fill(i).length; return kept; }
      allocateGarbage();`,
    );
    const profiles = join(dir, "profiles");
    // Its first argument names the profile, as a service's role does.
    await run(process.execPath, ["--import", SAMPLER, program, "worker"], {
      env: { ...process.env, MEGAPHONE_ALLOC_PROFILE_DIR: profiles },
    });
    const files = readdirSync(profiles);
    assert.equal(files.length, 1);
    assert.match(files[0], /^alloc-worker-\d+\.heapprofile$/);

    const { stdout } = await run(process.execPath, [REPORT, profiles, "--messages", "4096"]);
    const site = /^\s*([\d.]+) %\s+(\d+) B\/msg\s+allocateGarbage /m.exec(stdout);
    assert.ok(site, stdout);
    // 2,048 elements of 8 bytes each per "message"; sampling is statistical, so within 25 %.
    const perMessage = Number(site[2]);
    assert.ok(perMessage > 16384 * 0.75 && perMessage < 16384 * 1.25, stdout);
    assert.ok(Number(site[1]) > 50, "the garbage is most of what the process allocated");
  });
});
