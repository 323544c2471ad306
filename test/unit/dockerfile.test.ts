// The image's rules (issue 8), checked by reading the Dockerfile and .dockerignore: no Docker
// daemon runs here and no Dockerfile linter is packaged for this machine (hadolint is not in
// Debian's archive), so what a build would enforce is asserted on the text instead.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DEFAULTS } from "../../services/shared/config.js";
import {
  execForm,
  keptInContext,
  labels,
  parseDockerfile,
  readDockerfile,
  splitArg,
  type Dockerfile,
  type Instruction,
  type Stage,
} from "../helpers/dockerfile.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** Node 20 on Debian bookworm, optionally a point release, -slim and a digest. */
const NODE_20_BOOKWORM = /^node:20(\.\d+){0,2}-bookworm(-slim)?(@sha256:[0-9a-f]{64})?$/;

/** A FROM reference with the global ARG defaults put in. */
function resolveFrom(file: Dockerfile, from: string): string {
  return from.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a?: string, b?: string) => {
    const value = file.globalArgs.get((a ?? b) as string);
    assert.ok(value, `FROM ${from}: ARG ${a ?? b} has no default`);
    return value;
  });
}

function runs(stage: Stage): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === "RUN");
}

/** Index in `stage` of the first RUN whose command matches `re`, or -1. */
function runIndex(stage: Stage, re: RegExp): number {
  return stage.instructions.findIndex((i) => i.keyword === "RUN" && re.test(i.args));
}

function lastIndex(stage: Stage, re: RegExp): number {
  const i = [...stage.instructions]
    .reverse()
    .findIndex((ins) => ins.keyword === "RUN" && re.test(ins.args));
  return i < 0 ? -1 : stage.instructions.length - 1 - i;
}

const NPM_INSTALL = /\bnpm\s+(ci|install|i)\b/;
const NPM_PRUNE_DEV = /\bnpm\s+prune\b.*--omit=dev/;

describe("Dockerfile", () => {
  const file = readDockerfile(`${ROOT}Dockerfile`);
  const final = file.stages[file.stages.length - 1];
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as {
    bin: Record<string, string>;
    license: string;
  };

  it("builds in stages, every one on Node 20 / Debian bookworm (glibc, which the uWS binary needs)", () => {
    assert.ok(
      file.stages.length >= 2,
      `${file.stages.length} stage(s): build and runtime expected`,
    );
    for (const stage of file.stages) {
      const image = resolveFrom(file, stage.from);
      assert.match(image, NODE_20_BOOKWORM, `stage ${stage.name} is FROM ${image}`);
      assert.doesNotMatch(image, /alpine|musl/);
    }
  });

  it("installs from the lock file with npm ci, builds, then prunes the dev dependencies", () => {
    const build = file.stages.find((s) => runIndex(s, /\bnpm\s+ci\b/) >= 0);
    assert.ok(build, "no stage runs npm ci");
    const copyLock = build.instructions.findIndex(
      (i) => i.keyword === "COPY" && /\bpackage-lock\.json\b/.test(i.args),
    );
    const install = runIndex(build, /\bnpm\s+ci\b/);
    const compile = runIndex(build, /\btsc\b|\bnpm\s+run\s+build\b/);
    const prune = runIndex(build, NPM_PRUNE_DEV);
    assert.ok(copyLock >= 0 && copyLock < install, "package-lock.json is copied before npm ci");
    assert.ok(install < compile, "npm ci comes before the TypeScript build");
    assert.ok(compile < prune, "npm prune --omit=dev comes after the build");
    assert.equal(lastIndex(build, NPM_INSTALL), install, "nothing is installed after the prune");
    for (const stage of file.stages)
      for (const run of runs(stage))
        assert.doesNotMatch(run.args, /\bnpm\s+(install|i)\b/, `line ${run.line}: npm install`);
  });

  it("gives the runtime stage no install step and node_modules only from a pruned stage", () => {
    for (const run of runs(final))
      assert.doesNotMatch(run.args, /\b(npm|yarn|pnpm|apt-get|apt)\b/, `line ${run.line}`);
    const copies = final.instructions.filter(
      (i) => i.keyword === "COPY" && /\bnode_modules\b/.test(i.args),
    );
    assert.ok(copies.length > 0, "the runtime stage copies node_modules");
    for (const copy of copies) {
      const from = /--from=(\S+)/.exec(copy.args)?.[1];
      assert.ok(from, `line ${copy.line}: node_modules must come from a build stage`);
      const source = file.stages.find((s) => s.name === from);
      assert.ok(source, `line ${copy.line}: no stage named ${from}`);
      assert.ok(
        lastIndex(source, NPM_PRUNE_DEV) > lastIndex(source, NPM_INSTALL),
        `stage ${from} must prune the dev dependencies after its last install`,
      );
    }
  });

  it("checks at build time, in the runtime stage, that the uWS binary loads", () => {
    assert.ok(runIndex(final, /uWebSockets\.js\/binaries/) >= 0);
  });

  it("runs as a numeric non-root user", () => {
    const users = final.instructions.filter((i) => i.keyword === "USER");
    assert.ok(users.length > 0, "the runtime stage sets no USER");
    const user = users[users.length - 1].args;
    assert.match(user, /^\d+(:\d+)?$/, `USER ${user} must be numeric for runAsNonRoot`);
    assert.notEqual(Number(user.split(":")[0]), 0, "USER 0 is root");
  });

  it("starts node on the megaphone CLI itself (exec form, no shell or npm in between)", () => {
    const entrypoints = final.instructions.filter((i) => i.keyword === "ENTRYPOINT");
    assert.equal(entrypoints.length, 1);
    const argv = execForm(entrypoints[0].args);
    assert.ok(argv, "ENTRYPOINT must be exec form so SIGTERM reaches node");
    assert.equal(argv[0], "node");
    assert.ok(
      argv[1].endsWith(`/${pkg.bin.megaphone}`),
      `${argv[1]} is not package.json's bin ${pkg.bin.megaphone}`,
    );
    for (const cmd of final.instructions.filter((i) => i.keyword === "CMD"))
      assert.ok(execForm(cmd.args), `line ${cmd.line}: CMD must be exec form`);
  });

  it("carries the OCI labels", () => {
    const found = new Map<string, string>();
    for (const ins of final.instructions.filter((i) => i.keyword === "LABEL"))
      for (const [k, v] of labels(ins.args)) found.set(k, v);
    for (const key of ["title", "description", "licenses", "version", "revision"])
      assert.ok(found.get(`org.opencontainers.image.${key}`), `label ${key} missing`);
    assert.equal(found.get("org.opencontainers.image.licenses"), pkg.license);
  });

  it("has no HEALTHCHECK (Kubernetes ignores it; the pods' probes do that job) and no VOLUME", () => {
    for (const stage of file.stages)
      for (const ins of stage.instructions)
        assert.ok(!["HEALTHCHECK", "VOLUME"].includes(ins.keyword), `line ${ins.line}`);
  });

  it("exposes the edge's and the session's default ports", () => {
    const exposed = final.instructions
      .filter((i) => i.keyword === "EXPOSE")
      .flatMap((i) => i.args.split(/\s+/).map((p) => Number(p.split("/")[0])));
    assert.ok(
      exposed.includes(DEFAULTS.port),
      `EXPOSE ${exposed.join(" ")}: edge ${DEFAULTS.port}`,
    );
    assert.ok(exposed.includes(DEFAULTS.httpPort), `session http ${DEFAULTS.httpPort}`);
  });

  it("sends the build only what it copies (.dockerignore)", () => {
    const ignore = readFileSync(`${ROOT}.dockerignore`, "utf8");
    for (const stage of file.stages)
      for (const copy of stage.instructions.filter((i) => i.keyword === "COPY"))
        if (!/--from=/.test(copy.args))
          for (const source of copy.args.split(/\s+/).slice(0, -1))
            assert.ok(keptInContext(ignore, source), `line ${copy.line}: ${source} is ignored`);
    for (const path of ["node_modules", "dist", ".git", "test", "charts", ".env", "README.md"])
      assert.ok(!keptInContext(ignore, path), `${path} reaches the build context`);
  });

  it("reads continuations, comments and ARG defaults the way Docker does", () => {
    const parsed = parseDockerfile(
      "ARG IMG=node:20-bookworm-slim\nFROM ${IMG} AS a\n# c\nRUN one \\\n  # inside\n  two\nFROM a\nUSER 1000\n",
    );
    assert.equal(parsed.stages.length, 2);
    assert.equal(parsed.stages[0].instructions[0].args, "one two");
    assert.equal(parsed.stages[1].name, "1");
    assert.deepEqual(splitArg('X="y z"'), ["X", "y z"]);
    assert.equal(keptInContext("*\n!services/\n", "services/cli/main.ts"), true);
    assert.equal(keptInContext("*\n!services/\n", "servicesx"), false);
  });
});
