/**
 * The service's resident memory, sampled from outside: VmRSS of every process in its process group (one process, or a
 * cluster primary and its workers), summed, from /proc every 200 ms. Linux only; elsewhere there are no samples and
 * the report says so. RSS, not the V8 heap: it is what the machine pays, PGlite's WebAssembly memory included.
 */
import { readFileSync } from "node:fs";
import { groupPids } from "./cpu.ts";

export interface RssSample {
  /** performance.now() of this process. */
  atMs: number;
  rssMb: number;
}

export interface RssSampler {
  /** The samples so far, oldest first. */
  samples(): RssSample[];
  /** The highest sample taken in [fromMs, toMs] (performance.now() times), or null if none was. */
  peakBetween(fromMs: number, toMs: number): number | null;
  /** The median of the samples taken in [fromMs, toMs], or null if none was. */
  medianBetween(fromMs: number, toMs: number): number | null;
  /** Takes one sample now (besides the timer's) and returns it. */
  sampleNow(): RssSample | null;
  stop(): void;
}

/** How often the group's member list is re-read: a /proc scan costs a few ms of the load generator's CPU. */
const refreshPidsMs = 5_000;

export function startRssSampler(groupId: number, intervalMs = 200): RssSampler {
  const taken: RssSample[] = [];
  let pids: number[] = [];
  let pidsAtMs = Number.NEGATIVE_INFINITY;
  const sampleNow = (): RssSample | null => {
    const atMs = performance.now();
    if (atMs - pidsAtMs > refreshPidsMs) {
      pids = groupPids(groupId);
      if (pids.length === 0) pids = [groupId];
      pidsAtMs = atMs;
    }
    let kb = 0;
    let read = 0;
    for (const pid of pids) {
      const value = rssKb(pid);
      if (value === null) continue;
      kb += value;
      read++;
    }
    if (read === 0) return null;
    const sample = { atMs, rssMb: Math.round(kb / 102.4) / 10 };
    taken.push(sample);
    return sample;
  };
  sampleNow();
  const timer = setInterval(sampleNow, intervalMs);
  timer.unref();
  return {
    samples: () => [...taken],
    peakBetween(fromMs, toMs) {
      let peak: number | null = null;
      for (const sample of taken) {
        if (sample.atMs >= fromMs && sample.atMs <= toMs && (peak === null || sample.rssMb > peak)) peak = sample.rssMb;
      }
      return peak;
    },
    medianBetween(fromMs, toMs) {
      const within = taken
        .filter((sample) => sample.atMs >= fromMs && sample.atMs <= toMs)
        .map((sample) => sample.rssMb)
        .sort((a, b) => a - b);
      return within.length === 0 ? null : (within[within.length >> 1] ?? null);
    },
    sampleNow,
    stop: () => clearInterval(timer),
  };
}

function rssKb(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}
