// The bench's final table (Markdown, as docs/capacity.md shows it) and its JSON form.
import type { ProcUsage } from "./proc-stats.js";

export interface PhaseReport {
  /** `settled`: the idle sessions sampled again after --settle (bench-options.ts). */
  phase: "login" | "chat" | "presence" | "idle" | "settled";
  /** Figures in display order; numbers are rounded when printed. */
  figures: Record<string, number | string>;
  processes: ProcUsage[];
}

export interface BenchReport {
  scenario: string;
  settings: Record<string, unknown>;
  machine: { cores: number; cpu: string; node: string };
  phases: PhaseReport[];
}

function formatValue(value: number | string): string {
  if (typeof value === "string") return value;
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100
    ? value.toFixed(0)
    : Math.abs(value) >= 1
      ? value.toFixed(2)
      : value.toFixed(3);
}

function table(rows: Record<string, number | string>[]): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const lines = [
    `| ${columns.join(" | ")} |`,
    `| ${columns.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${columns.map((c) => (c in r ? formatValue(r[c]) : "")).join(" | ")} |`),
  ];
  return lines.join("\n");
}

export function formatReport(report: BenchReport): string {
  const out = [
    `megaphone bench ${report.scenario} on ${report.machine.cores} cores (${report.machine.cpu}), node ${report.machine.node}`,
  ];
  for (const phase of report.phases) {
    out.push("", `${phase.phase}:`, table([phase.figures]));
    if (phase.processes.length > 0)
      out.push(
        "",
        table(
          phase.processes.map((p) => ({
            process: `${p.role} (${p.pid})`,
            "CPU s": p.cpuSeconds,
            "cores used": p.cores,
            "RSS MiB": p.rssBytes / 2 ** 20,
          })),
        ),
      );
  }
  return out.join("\n");
}
