/**
 * Everything printed after the table: the stream and commit probes, the service's memory, the soak, and the targets
 * of the performance issue (14) with what this run measured against each. Medians of the rounds, like the table.
 */
import type { CommitProbeRound, StreamProbeRound, Timing } from "./probes.ts";
import { median, type Row } from "./report.ts";
import { type RunResult, round } from "./scenarios.ts";

export interface StreamSummary {
  rounds: number;
  requestsPerRound: number;
  direct: { firstByte: Timing; total: Timing };
  service: { firstByte: Timing; total: Timing };
  /** The service's median minus direct's, like the table's +p50/+p99. */
  added: { firstByte: Timing; total: Timing };
}

export function summarizeStreams(rounds: StreamProbeRound[]): StreamSummary | null {
  const first = rounds[0];
  if (!first) return null;
  const timing = (pick: (round: StreamProbeRound) => Timing): Timing => ({
    p50Ms: median(rounds.map((r) => pick(r).p50Ms)),
    p99Ms: median(rounds.map((r) => pick(r).p99Ms)),
  });
  const direct = { firstByte: timing((r) => r.direct.firstByte), total: timing((r) => r.direct.total) };
  const service = { firstByte: timing((r) => r.service.firstByte), total: timing((r) => r.service.total) };
  const minus = (a: Timing, b: Timing): Timing => ({
    p50Ms: round(a.p50Ms - b.p50Ms),
    p99Ms: round(a.p99Ms - b.p99Ms),
  });
  return {
    rounds: rounds.length,
    requestsPerRound: first.requests,
    direct,
    service,
    added: { firstByte: minus(service.firstByte, direct.firstByte), total: minus(service.total, direct.total) },
  };
}

export interface CommitSummary extends Timing {
  tool: CommitProbeRound["tool"];
  rounds: number;
  commitsPerRound: number;
}

export function summarizeCommits(rounds: CommitProbeRound[]): CommitSummary | null {
  const first = rounds[0];
  if (!first) return null;
  return {
    tool: first.tool,
    rounds: rounds.length,
    commitsPerRound: Math.round(median(rounds.map((r) => r.commits))),
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
  };
}

export interface MemorySummary {
  /** Sampled just before the first measured round, MB. */
  atStartMb: number | null;
  /** The highest sample of the measured rounds at the throughput concurrency, and the run it came from. */
  peakMb: number | null;
  peakDuring: string | null;
  /** The V8 heap (used / reserved) and memory outside it at the end of that run, MB. */
  peakHeap: RunResult["heap"];
  /** The highest sample from the service's start to its stop (warm-ups, probes and soak included). */
  peakWholeRunMb: number | null;
  /** Processes the figures add up (the cluster primary and workers with --workers). */
  processes: number;
  /** The throughput concurrency the peak is taken at. */
  connections: number;
}

export function summarizeMemory(
  runs: RunResult[],
  connections: number,
  atStartMb: number | null,
  peakWholeRunMb: number | null,
  processes: number,
): MemorySummary {
  let peak: RunResult | undefined;
  for (const run of runs) {
    // The baselines leave the service idle: its memory then is what an earlier run left, not theirs.
    if (run.scenario === "proxy" || run.scenario === "direct") continue;
    if (run.connections !== connections || run.rssPeakMb === null) continue;
    if (!peak || (peak.rssPeakMb ?? 0) < run.rssPeakMb) peak = run;
  }
  return {
    atStartMb,
    peakMb: peak?.rssPeakMb ?? null,
    peakDuring: peak ? `${peak.scenario} @${peak.connections}` : null,
    peakHeap: peak?.heap ?? null,
    peakWholeRunMb,
    processes,
    connections,
  };
}

export interface SoakSummary {
  minutes: number;
  run: RunResult;
  /**
   * The median RSS under the soak's load in its first minute and in its last: flat, or growing (a leak, an unbounded
   * cache). Medians under load, not single samples at rest: a sample at rest can land just after V8 has given memory
   * back (seen: 147 MB for 10 s idle, then 108 MB for 0.4 s, then 145 MB under load within 2 s).
   */
  rssFirstMinuteMb: number | null;
  rssLastMinuteMb: number | null;
  changePercent: number | null;
  /** One sample each after 10 s without load, before and after the soak: for information, no target. */
  rssBeforeMb: number | null;
  rssAfterMb: number | null;
}

export interface TargetCheck {
  what: string;
  measured: number;
  unit: string;
  /** `≤ limit` or `≥ limit`; null: reported, no target. */
  limit: { op: "≤" | "≥"; value: number } | null;
  /** |measured| is compared (a change that may go either way). */
  absolute?: boolean;
}

export interface TargetInput {
  embedded: boolean;
  workers: number;
  connections: number;
  rows: Row[];
  streams: StreamSummary | null;
  commits: CommitSummary | null;
  memory: MemorySummary;
  soak: SoakSummary | null;
}

/** The performance targets this run has figures for; a target whose scenario did not run is left out. */
export function checkTargets(input: TargetInput): TargetCheck[] {
  const { rows, connections: n } = input;
  const row = (scenario: string, connections: number) =>
    rows.find((r) => r.scenario === scenario && r.connections === connections);
  const checks: TargetCheck[] = [];
  const add = (what: string, measured: number | null | undefined, unit: string, limit: TargetCheck["limit"]) => {
    if (measured !== null && measured !== undefined) checks.push({ what, measured, unit, limit });
  };

  const miss1 = row("miss", 1);
  if (!input.embedded && input.commits && miss1) {
    const { p50Ms, p99Ms } = input.commits;
    if (miss1.addedP50Ms !== null)
      add("miss @1: +p50 beyond one commit's p50", round(miss1.addedP50Ms - p50Ms), "ms", { op: "≤", value: 1 });
    if (miss1.addedP99Ms !== null)
      add("miss @1: +p99 beyond one commit's p99", round(miss1.addedP99Ms - p99Ms), "ms", { op: "≤", value: 5 });
  }
  if (!input.embedded) {
    add(`miss @${n}: req/s × proxy`, row("miss", n)?.ratioToProxy, "×", { op: "≥", value: 0.35 });
    add(`hit @${n}: req/s × proxy`, row("hit", n)?.ratioToProxy, "×", { op: "≥", value: 0.8 });
  }
  // The service's own CPU per request: its share of a core over the rounds, divided by the requests it served.
  if (input.workers === 1) {
    for (const scenario of ["miss", "hit"]) {
      const r = row(scenario, n);
      const share = r?.cpu.service;
      if (r && share !== null && share !== undefined && r.requestsPerSecond > 0) {
        add(`${scenario} @${n}: service CPU per request`, Math.round((share * 1e6) / r.requestsPerSecond), "µs", null);
      }
    }
  }
  add("v1-stream: added time to first byte, p50", input.streams?.added.firstByte.p50Ms, "ms", { op: "≤", value: 1 });
  if (input.embedded) {
    for (const scenario of ["miss", "hit", "v1", "v1-stream"]) {
      add(`embedded: ${scenario} @${n} p99`, row(scenario, n)?.p99Ms, "ms", { op: "≤", value: 25 });
    }
  }
  const processes = input.memory.processes > 1 ? ` (${input.memory.processes} processes together)` : "";
  add(`peak RSS @${n}${processes}`, input.memory.peakMb, "MB", { op: "≤", value: 200 });
  if (input.soak?.changePercent !== null && input.soak?.changePercent !== undefined) {
    checks.push({
      what: `RSS in the soak's last minute vs its first`,
      measured: input.soak.changePercent,
      unit: "%",
      limit: { op: "≤", value: 10 },
      absolute: true,
    });
  }
  if (input.workers > 1) {
    add(`hit @${n} with ${input.workers} workers: req/s`, row("hit", n)?.requestsPerSecond, "req/s", null);
    add(`hit @${n} with ${input.workers} workers: req/s × proxy`, row("hit", n)?.ratioToProxy, "×", null);
  }
  return checks;
}

/** How a figure of this unit is printed: whole MB and req/s, tenths of a per cent, hundredths otherwise. */
const digitsOf = (unit: string) => (unit === "MB" || unit === "req/s" || unit === "µs" ? 0 : unit === "%" ? 1 : 2);
const withUnit = (value: number, unit: string) =>
  unit === "×" ? value.toFixed(digitsOf(unit)) : `${value.toFixed(digitsOf(unit))} ${unit}`;

export function verdict(check: TargetCheck): string {
  if (!check.limit) return "—";
  const value = check.absolute ? Math.abs(check.measured) : check.measured;
  const { op, value: limit } = check.limit;
  const margin = withUnit(Math.abs(value - limit), check.unit);
  const met = op === "≤" ? value <= limit : value >= limit;
  return met ? `met (${margin} to spare)` : `NOT met (${op === "≤" ? "over" : "short"} by ${margin})`;
}

const fixed = (value: number | null | undefined, digits = 2) =>
  value === null || value === undefined ? "—" : value.toFixed(digits);

export function formatStreams(summary: StreamSummary): string {
  const line = (name: string, t: { firstByte: Timing; total: Timing }) =>
    `  ${name.padEnd(8)}${[t.firstByte.p50Ms, t.firstByte.p99Ms, t.total.p50Ms, t.total.p99Ms]
      .map((value) => fixed(value).padStart(10))
      .join("")}`;
  return [
    `stream probe: ${summary.rounds} × ${summary.requestsPerRound} streamed chat completions each way, one at a ` +
      "time, alternating; ms",
    `  ${"".padEnd(8)}${["TTFB p50", "TTFB p99", "end p50", "end p99"].map((title) => title.padStart(10)).join("")}`,
    line("direct", summary.direct),
    line("service", summary.service),
    line("added", summary.added),
  ].join("\n");
}

export function formatCommits(summary: CommitSummary, miss: Row | undefined): string {
  const lines = [
    `commit probe: ${summary.tool}, 1 client, single-row INSERT commits, ${summary.rounds} round${summary.rounds === 1 ? "" : "s"} of ` +
      `${summary.commitsPerRound} commits: p50 ${fixed(summary.p50Ms)} ms, p99 ${fixed(summary.p99Ms)} ms`,
  ];
  if (miss?.addedP50Ms !== null && miss?.addedP50Ms !== undefined && miss.addedP99Ms !== null) {
    lines.push(
      `  miss @1 beyond one commit: p50 ${fixed(miss.addedP50Ms)} − ${fixed(summary.p50Ms)} = ` +
        `${fixed(miss.addedP50Ms - summary.p50Ms)} ms, p99 ${fixed(miss.addedP99Ms)} − ${fixed(summary.p99Ms)} = ` +
        `${fixed(miss.addedP99Ms - summary.p99Ms)} ms`,
    );
  }
  return lines.join("\n");
}

export function formatMemory(memory: MemorySummary): string {
  const of = memory.processes > 1 ? ` (${memory.processes} processes together)` : "";
  const heap = memory.peakHeap;
  return [
    `service RSS${of}: ${fixed(memory.atStartMb, 0)} MB when the rounds began; peak ${fixed(memory.peakMb, 0)} MB ` +
      `in the rounds at ${memory.connections} connections (${memory.peakDuring ?? "—"}); ` +
      `peak ${fixed(memory.peakWholeRunMb, 0)} MB over the service's whole life (warm-ups, probes, soak)`,
    heap
      ? `  at the end of ${memory.peakDuring}: V8 heap ${fixed(heap.usedMb, 0)} MB used of ${fixed(heap.totalMb, 0)} ` +
        `MB reserved, ${fixed(heap.externalMb, 0)} MB outside the heap (Buffers, WebAssembly); the rest of the RSS ` +
        "is code, native memory and stacks"
      : "",
  ]
    .filter(Boolean)
    .join("\n");
}

export function formatSoak(soak: SoakSummary): string {
  const change = soak.changePercent === null ? "—" : `${soak.changePercent > 0 ? "+" : ""}${soak.changePercent} %`;
  return (
    `soak: ${soak.minutes} min of miss + hit at ${soak.run.connections} connections, ` +
    `${soak.run.requestsPerSecond.toFixed(0)} req/s, p99 ${fixed(soak.run.p99Ms)} ms: RSS under load ` +
    `${fixed(soak.rssFirstMinuteMb, 0)} MB in the first minute, ${fixed(soak.rssLastMinuteMb, 0)} MB in the last ` +
    `(${change}; medians); at rest ${fixed(soak.rssBeforeMb, 0)} MB before and ${fixed(soak.rssAfterMb, 0)} MB after`
  );
}

export function formatTargets(checks: TargetCheck[]): string {
  const cells = checks.map((check) => [
    check.what,
    `${check.absolute && check.measured > 0 ? "+" : ""}${withUnit(check.measured, check.unit)}`,
    check.limit
      ? `${check.absolute ? "±" : check.limit.op} ${check.limit.value}${check.unit === "×" ? "" : ` ${check.unit}`}`
      : "",
    verdict(check),
  ]);
  const widths = [0, 1, 2].map((i) => Math.max(...cells.map((cell) => (cell[i] ?? "").length)));
  return [
    "targets (issue 14):",
    ...cells.map(
      ([what = "", measured = "", limit = "", result = ""]) =>
        `  ${what.padEnd(widths[0] ?? 0)}  ${measured.padStart(widths[1] ?? 0)}  ${limit.padEnd(widths[2] ?? 0)}  ${result}`,
    ),
  ].join("\n");
}
