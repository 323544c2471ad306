// A small Dockerfile reader for the image's rule checks (no Docker daemon or Dockerfile linter is
// available on this machine): logical lines (backslash continuations joined, comments and blank
// lines dropped), each as an instruction and its arguments, grouped by build stage. Only what
// the repository's Dockerfile uses: no parser directives besides `# syntax`, no heredocs.
import { readFileSync } from "node:fs";

export interface Instruction {
  /** Upper-cased keyword: FROM, RUN, COPY, … */
  keyword: string;
  /** Everything after the keyword, continuations joined with a space. */
  args: string;
  /** 1-based line of the keyword in the file. */
  line: number;
}

export interface Stage {
  /** The name after AS, or the stage's index as a string. */
  name: string;
  /** The image reference after FROM, with ${ARG} left as written. */
  from: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Map<string, string | undefined>;
  stages: Stage[];
}

/** Joins continued lines and splits each logical line into keyword and arguments. */
export function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split("\n");
  let current: { parts: string[]; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const trimmed = raw.trim();
    // A comment line inside a continuation is dropped without ending it (as Docker does).
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const continued = trimmed.endsWith("\\");
    const body = continued ? trimmed.slice(0, -1).trim() : trimmed;
    if (current) current.parts.push(body);
    else current = { parts: [body], line: i + 1 };
    if (continued) continue;
    const joined = current.parts.join(" ");
    const space = joined.search(/\s/);
    out.push({
      keyword: (space < 0 ? joined : joined.slice(0, space)).toUpperCase(),
      args: space < 0 ? "" : joined.slice(space + 1).trim(),
      line: current.line,
    });
    current = undefined;
  }
  if (current) throw new Error(`line ${current.line}: continuation runs past the end of the file`);
  return out;
}

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs = new Map<string, string | undefined>();
  const stages: Stage[] = [];
  for (const ins of instructions(text)) {
    if (ins.keyword === "FROM") {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ name: m[2] ?? String(stages.length), from: m[1], instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== "ARG") throw new Error(`line ${ins.line}: ${ins.keyword} before FROM`);
      const [name, value] = splitArg(ins.args);
      globalArgs.set(name, value);
    } else stages[stages.length - 1].instructions.push(ins);
  }
  return { globalArgs, stages };
}

export function readDockerfile(path: string): Dockerfile {
  return parseDockerfile(readFileSync(path, "utf8"));
}

/** `NAME=value` or `NAME` of an ARG; a quoted value loses its quotes. */
export function splitArg(args: string): [string, string | undefined] {
  const eq = args.indexOf("=");
  if (eq < 0) return [args.trim(), undefined];
  return [args.slice(0, eq).trim(), args.slice(eq + 1).replace(/^"(.*)"$/, "$1")];
}

/** The key="value" pairs of a LABEL instruction. */
export function labels(args: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of args.matchAll(/([\w.\-/]+)=("(?:[^"\\]|\\.)*"|\S+)/g))
    out.set(m[1], m[2].replace(/^"(.*)"$/, "$1"));
  return out;
}

/** The arguments of an exec-form (JSON array) instruction, or undefined for shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.startsWith("[")) return undefined;
  const parsed: unknown = JSON.parse(args);
  return Array.isArray(parsed) && parsed.every((a) => typeof a === "string") ? parsed : undefined;
}

/**
 * Whether .dockerignore keeps `path` (relative, no leading ./) in the build context: patterns
 * in order, the last one that matches wins, `!` re-includes; `*` matches within one path
 * element, and a pattern that matches a directory matches everything under it. Enough for
 * this repository's allow-list, not the whole of Docker's syntax (no `**`, no `?`).
 */
export function keptInContext(dockerignore: string, path: string): boolean {
  let kept = true;
  for (const raw of dockerignore.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const negated = line.startsWith("!");
    const pattern = (negated ? line.slice(1) : line).replace(/^\/+|\/+$/g, "");
    const re = new RegExp(
      "^" +
        pattern
          .split("*")
          .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
          .join("[^/]*") +
        "(/.*)?$",
    );
    if (re.test(path)) kept = negated;
  }
  return kept;
}
