/**
 * Where a V8 `.cpuprofile` (what `node --cpu-prof` writes) spent its self time: by function and by package.
 *   npx tsx bench/profile.ts bench/results/profiles/<file>.cpuprofile [--top 20]
 * `npm run bench -- --cpu-prof` profiles the service and prints this summary of the measured window by itself.
 */
import { realpathSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { relative } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { repoRoot } from "./processes.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  /** Microseconds on the monotonic clock (the one `process.hrtime` reads, on Linux). */
  startTime: number;
}

export interface Share {
  name: string;
  ms: number;
  percent: number;
}

export interface ProfileSummary {
  sampledMs: number;
  /** Whether only the samples inside the requested window were counted (false: the whole process life). */
  windowed: boolean;
  functions: Share[];
  packages: Share[];
}

/**
 * Self time per function (same name, file and line summed) and per package (`node_modules/<name>`, a file of this
 * repository, `wasm`, node's internals, or V8's own entries such as "(garbage collector)" and "(idle)").
 * With `windowUs` ([from, to] in monotonic microseconds), only samples taken inside it count, so start-up and
 * shutdown stay out; without samples in it, everything counts.
 */
export async function summarizeProfile(file: string, top = 20, windowUs?: [number, number]): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const times: number[] = [];
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0;
    times.push(at);
  }
  const inWindow = (time: number) => !windowUs || (time >= windowUs[0] && time <= windowUs[1]);
  const windowed = windowUs !== undefined && times.some(inWindow);

  const functions = new Map<string, { name: string; us: number }>();
  const packages = new Map<string, number>();
  let totalUs = 0;
  for (let i = 0; i < samples.length; i++) {
    if (windowed && !inWindow(times[i] ?? 0)) continue;
    const node = byNode.get(samples[i] ?? -1);
    if (!node) continue;
    // A sample stands for the time until the next one.
    const us = Math.max(0, deltas[i + 1] ?? 0);
    totalUs += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = `${functionName || "(anonymous)"}  ${where(url, lineNumber)}`.trim();
    const entry = functions.get(name) ?? { name, us: 0 };
    entry.us += us;
    functions.set(name, entry);
    const pkg = packageOf(url, functionName);
    packages.set(pkg, (packages.get(pkg) ?? 0) + us);
  }
  const share = (name: string, us: number): Share => ({
    name,
    ms: Math.round(us / 1000),
    percent: totalUs > 0 ? Math.round((us / totalUs) * 1000) / 10 : 0,
  });
  return {
    sampledMs: Math.round(totalUs / 1000),
    windowed,
    functions: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((entry) => share(entry.name, entry.us)),
    packages: [...packages.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => share(name, us)),
  };
}

function where(url: string, line: number): string {
  if (url === "") return "";
  const path = url.startsWith("file://") ? relative(repoRoot, new URL(url).pathname) : url;
  return `${path}:${line + 1}`;
}

function packageOf(url: string, functionName: string): string {
  if (url === "") return functionName; // (idle), (garbage collector), (program), native functions
  if (url.startsWith("wasm://")) return "wasm";
  if (url.startsWith("node:")) return "node (internals)";
  const inModules = url.split("node_modules/").at(-1);
  if (inModules !== undefined && inModules !== url) {
    const parts = inModules.split("/");
    return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? url);
  }
  return url.startsWith("file://") ? relative(repoRoot, new URL(url).pathname) : url;
}

export function formatProfile(summary: ProfileSummary): string {
  const line = (entry: Share) =>
    `  ${entry.percent.toFixed(1).padStart(5)}%  ${String(entry.ms).padStart(6)} ms  ${entry.name}`;
  const scope = summary.windowed ? "during the measured runs" : "over the whole process life (start-up included)";
  return [
    `self time ${scope}, ${summary.sampledMs} ms sampled; by package:`,
    ...summary.packages.map(line),
    "by function:",
    ...summary.functions.map(line),
  ].join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string" } } });
  const file = positionals[0];
  if (!file) {
    console.error("usage: npx tsx bench/profile.ts <file.cpuprofile> [--top 20]");
    process.exit(2);
  }
  console.log(formatProfile(await summarizeProfile(file, Number(values.top ?? 20))));
}
