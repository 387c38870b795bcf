/**
 * From measured runs to the one table and the JSON file: the median of the rounds per scenario and concurrency,
 * throughput as a multiple of the bare proxy's and latency added to the direct call's (both measured in the same
 * run), and every reason the run is not to be trusted. The probes, memory and targets are formatted in summary.ts.
 */
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./processes.ts";
import type { RunResult, ScenarioName } from "./scenarios.ts";

export interface Row {
  scenario: ScenarioName;
  connections: number;
  rounds: number;
  /** Medians across the measured rounds. */
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** (max − min) / median of the rounds' req/s, in percent: how repeatable the figure was in this run. */
  spreadPercent: number;
  /** Totals over the measured rounds (any of them makes the run fail). */
  non2xx: number;
  errors: number;
  unexpected: number;
  /** req/s of this scenario over the bare proxy's at the same concurrency and round, median (the `× proxy` column). */
  ratioToProxy: number | null;
  /** req/s of this scenario over direct's at the same concurrency (JSON only). */
  ratioToDirect: number | null;
  /**
   * This scenario's p50/p99 minus direct's in the same round, median, at 1 connection only. Null for v1-stream: its
   * baseline is a streamed direct call, which the stream probe measures (summary.ts).
   */
  addedP50Ms: number | null;
  addedP99Ms: number | null;
  /** addedP50Ms over the proxy's: how many bare proxy hops the added latency is worth (the `× hop` column). */
  addedP50Hops: number | null;
  /** The service's highest RSS sampled in any of the rounds, MB. */
  rssPeakMb: number | null;
  /** Median share of a core per process during the rounds (1 = one core busy). */
  cpu: Record<string, number | null>;
  /** Medians of the service's own mean time per request and of its mean upstream wait (its /metrics), ms. */
  serviceMeanMs: number | null;
  upstreamMeanMs: number | null;
}

export function summarize(runs: RunResult[], scenarios: readonly ScenarioName[], levels: number[]): Row[] {
  const rows: Row[] = [];
  for (const connections of levels) {
    for (const scenario of scenarios) {
      const rounds = runs.filter((run) => run.scenario === scenario && run.connections === connections);
      if (rounds.length === 0) continue;
      const rps = rounds.map((run) => run.requestsPerSecond);
      const medianRps = median(rps);
      const cpuNames = [...new Set(rounds.flatMap((run) => Object.keys(run.cpu)))];
      rows.push({
        scenario,
        connections,
        rounds: rounds.length,
        requestsPerSecond: medianRps,
        p50Ms: median(rounds.map((run) => run.p50Ms)),
        p99Ms: median(rounds.map((run) => run.p99Ms)),
        spreadPercent: medianRps > 0 ? round(((Math.max(...rps) - Math.min(...rps)) / medianRps) * 100) : 0,
        non2xx: sum(rounds.map((run) => run.non2xx)),
        errors: sum(rounds.map((run) => run.errors)),
        unexpected: sum(rounds.map((run) => run.unexpected)),
        ratioToProxy: null,
        ratioToDirect: null,
        addedP50Ms: null,
        addedP99Ms: null,
        addedP50Hops: null,
        rssPeakMb: maxOrNull(rounds.map((run) => run.rssPeakMb)),
        cpu: Object.fromEntries(cpuNames.map((name) => [name, medianOrNull(rounds.map((run) => run.cpu[name]))])),
        serviceMeanMs: medianOrNull(rounds.map((run) => run.serviceMeanMs)),
        upstreamMeanMs: medianOrNull(rounds.map((run) => run.upstreamMeanMs)),
      });
    }
  }
  // Ratios and differences are taken round by round (round k of the scenario against round k of the baseline, run
  // within the same minute or two) and their median shown: the machine's speed drifts between rounds (this VM's
  // direct req/s moved by half from one round to the next, with nothing else running), and a comparison inside a
  // round cancels most of it, where a ratio of two medians could pair a fast round with a slow one.
  const perRound = (row: Row, baseline: ScenarioName, compare: (run: RunResult, base: RunResult) => number) => {
    const values: number[] = [];
    for (const run of runs) {
      if (run.scenario !== row.scenario || run.connections !== row.connections) continue;
      const base = runs.find(
        (b) => b.scenario === baseline && b.connections === run.connections && b.round === run.round,
      );
      const value = base ? compare(run, base) : Number.NaN;
      if (Number.isFinite(value)) values.push(value);
    }
    return values.length > 0 ? round(median(values)) : null;
  };
  for (const row of rows) {
    row.ratioToProxy = perRound(row, "proxy", (run, base) => run.requestsPerSecond / base.requestsPerSecond);
    row.ratioToDirect = perRound(row, "direct", (run, base) => run.requestsPerSecond / base.requestsPerSecond);
    if (row.connections === 1 && row.scenario !== "direct" && row.scenario !== "v1-stream") {
      row.addedP50Ms = perRound(row, "direct", (run, base) => run.p50Ms - base.p50Ms);
      row.addedP99Ms = perRound(row, "direct", (run, base) => run.p99Ms - base.p99Ms);
    }
  }
  const find = (scenario: ScenarioName, connections: number) =>
    rows.find((other) => other.scenario === scenario && other.connections === connections);
  const hop = find("proxy", 1)?.addedP50Ms;
  for (const row of rows) {
    // A hop cheaper than 0.01 ms is below what the percentiles resolve: no multiple of it means anything.
    if (row.addedP50Ms !== null && hop !== undefined && hop !== null && hop >= 0.01)
      row.addedP50Hops = round(row.addedP50Ms / hop);
  }
  return rows;
}

/** Every reason not to trust the numbers: non-2xx answers, errors, wrong answers, wrong upstream traffic. */
export function problems(runs: RunResult[], phase: "warm-up" | "measured" | "soak"): string[] {
  const found: string[] = [];
  for (const run of runs) {
    const at = `${phase} ${run.scenario} @${run.connections}`;
    if (run.answers === 0) found.push(`${at}: no answers at all`);
    if (run.non2xx > 0) found.push(`${at}: ${run.non2xx} non-2xx answers (${JSON.stringify(run.statusCodes)})`);
    if (run.errors > 0) found.push(`${at}: ${run.errors} errors (${run.timeouts} of them timeouts)`);
    if (run.unexpected > 0)
      found.push(`${at}: ${run.unexpected} unexpected answers, e.g. ${run.unexpectedExamples[0]}`);
    // Requests in flight when the load stops may still reach the mock: up to one per connection.
    const slack = run.upstreamCallsExpected > 0 ? run.connections : 0;
    if (run.upstreamCalls < run.upstreamCallsExpected || run.upstreamCalls > run.upstreamCallsExpected + slack) {
      found.push(`${at}: the mock saw ${run.upstreamCalls} upstream calls, expected ${run.upstreamCallsExpected}`);
    }
  }
  return found;
}

const columns = [
  "scenario",
  "conn",
  "req/s",
  "±%",
  "p50 ms",
  "p99 ms",
  "non-2xx",
  "errors",
  "× proxy",
  "+p50 ms",
  "+p99 ms",
  "× hop",
  "svc ms",
  "RSS MB",
  "cpu svc/mock/gen/other",
] as const;

export function formatTable(rows: Row[]): string {
  const cell = (value: number | null, digits = 2) => (value === null ? "—" : value.toFixed(digits));
  const share = (value: number | null | undefined) => (value === null || value === undefined ? "?" : value.toFixed(2));
  const lines = rows.map((row) => [
    row.scenario,
    String(row.connections),
    row.requestsPerSecond.toFixed(0),
    row.spreadPercent.toFixed(0),
    cell(row.p50Ms),
    cell(row.p99Ms),
    String(row.non2xx + row.unexpected),
    String(row.errors),
    cell(row.ratioToProxy),
    cell(row.addedP50Ms),
    cell(row.addedP99Ms),
    cell(row.addedP50Hops),
    cell(row.serviceMeanMs),
    // In the baselines' rows the service idles: its memory there is what an earlier run left.
    row.scenario === "proxy" || row.scenario === "direct" ? "—" : cell(row.rssPeakMb, 0),
    // The first share is the process in the middle: the bare proxy in its own rows, the service elsewhere.
    [share(row.scenario === "proxy" ? row.cpu.proxy : row.cpu.service), share(row.cpu.mock), share(row.cpu.bench)]
      .concat(share(row.cpu.other))
      .join("/"),
  ]);
  const widths = columns.map((title, i) => Math.max(title.length, ...lines.map((line) => (line[i] ?? "").length)));
  const render = (values: readonly string[]) =>
    values.map((value, i) => (i === 0 ? value.padEnd(widths[i] ?? 0) : value.padStart(widths[i] ?? 0))).join("  ");
  return [render(columns), render(widths.map((width) => "-".repeat(width))), ...lines.map(render)].join("\n");
}

export function tableLegend(cores: number): string {
  return [
    "req/s, p50, p99: medians of the rounds; ±%: spread of the rounds' req/s ((max − min) / median).",
    "non-2xx counts wrong answers too (x-cache not as expected); non-2xx and errors are totals over all rounds.",
    "× proxy: req/s over the bare proxy's at the same connections. +p50/+p99: latency added to direct's (the mock",
    "alone), at 1 connection (v1-stream: see the stream probe). Both are taken round by round, then the median.",
    "× hop: +p50 over the proxy's +p50. svc ms: the service's own mean time per request (its /metrics). RSS MB: the",
    "service's peak resident memory in the rounds. cpu: share of a core used by the service (the proxy in its rows),",
    `the mock, the load generator and everything else (PostgreSQL, Redis, kernel); ${cores} cores in all.`,
  ].join("\n");
}

/**
 * In the direct and proxy runs only the load generator, the mock and the bare proxy work, so CPU used by anything
 * else there is someone else's: tests, a type-check, a build. Not a failure (the answers were right), but the numbers are noisy.
 */
export function contentionNote(runs: RunResult[]): string | undefined {
  const others = runs
    .filter((run) => run.scenario === "direct" || run.scenario === "proxy")
    .map((run) => run.cpu.other)
    .filter((value): value is number => typeof value === "number");
  if (others.length === 0) return undefined;
  const worst = Math.max(...others);
  if (worst <= 0.3) return undefined;
  const median = [...others].sort((a, b) => a - b)[Math.floor(others.length / 2)] ?? 0;
  return (
    `other work kept up to ${worst.toFixed(2)} cores busy during the direct and proxy rounds ` +
    `(median ${median.toFixed(2)}): ` +
    "the machine was not quiet, so these numbers are noisy; run again when it is"
  );
}

/** Warnings and errors in the service's output; errors (and anything not JSON, e.g. a stack) fail the run. */
export function serviceLogProblems(lines: string[]): { notable: string[]; failures: string[] } {
  const notable: string[] = [];
  let errors = 0;
  for (const line of lines) {
    let level: unknown;
    try {
      level = (JSON.parse(line) as { level?: unknown }).level;
    } catch {
      level = "unparsed";
    }
    if (level === "warn" || level === "info" || level === "debug" || level === "trace") {
      if (level === "warn") notable.push(line);
      continue;
    }
    notable.push(line);
    errors++;
  }
  return { notable, failures: errors > 0 ? [`the service logged ${errors} errors (see its log above)`] : [] };
}

/** Identical messages once, with a count. */
export function summarizeLines(lines: string[]): string[] {
  const counts = new Map<string, { example: string; count: number }>();
  for (const line of lines) {
    let key = line;
    try {
      const parsed = JSON.parse(line) as { level?: string; msg?: string; err?: { message?: string } };
      key = `${parsed.level}: ${parsed.msg}${parsed.err?.message ? ` (${parsed.err.message})` : ""}`;
    } catch {}
    const entry = counts.get(key) ?? { example: line, count: 0 };
    entry.count++;
    counts.set(key, entry);
  }
  return [...counts.entries()].map(([key, { count }]) => (count > 1 ? `${count} × ${key}` : key));
}

/** What the numbers were measured on. */
export function describeMachine() {
  const list = cpus();
  return { cores: list.length, model: list[0]?.model ?? "unknown", node: process.version, platform: process.platform };
}

/** The commit measured, and whether the working tree had changes. */
export function describeGit(): { commit: string; dirty: boolean } {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: repoRoot,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    const status = execFileSync("git", ["status", "--porcelain"], {
      cwd: repoRoot,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    return { commit, dirty: status.trim() !== "" };
  } catch {
    return { commit: "unknown", dirty: false };
  }
}

export async function writeResults(directory: string, startedAt: Date, results: unknown): Promise<string> {
  await mkdir(directory, { recursive: true });
  const file = join(
    directory,
    `${startedAt
      .toISOString()
      .replaceAll(":", "-")
      .replace(/\.\d+Z$/, "Z")}.json`,
  );
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return 0;
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : round(((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2);
}

function medianOrNull(values: Array<number | null | undefined>): number | null {
  const known = values.filter((value): value is number => typeof value === "number");
  return known.length === 0 ? null : median(known);
}

function maxOrNull(values: Array<number | null | undefined>): number | null {
  const known = values.filter((value): value is number => typeof value === "number");
  return known.length === 0 ? null : Math.max(...known);
}

const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
const round = (value: number) => Math.round(value * 100) / 100;
