/**
 * Where the machine's CPU went during a run: the load generator (this process), the mock upstream, the service, and
 * everything else (PostgreSQL, Redis, the OS). Read from /proc, so Linux only; elsewhere every figure is null.
 * Resolution is the kernel's clock tick (10 ms), plenty over a run of seconds.
 *
 * Each child is a process group leader (processes.ts spawns them detached), and its figure is the whole group's:
 * with `--workers N` the service is a cluster primary and N workers, all in one group.
 */
import { readdirSync, readFileSync } from "node:fs";

const ticksPerSecond = 100; // USER_HZ; 100 on every Linux this runs on

export interface CpuSnapshot {
  atMs: number;
  benchMs: number;
  /** By child name; null where /proc could not be read. */
  children: Record<string, number | null>;
  /** All CPUs, busy time (everything but idle and iowait); null without /proc. */
  machineBusyMs: number | null;
}

/** CPU time of each child's process group so far (by the group leader's pid), and the machine's. */
export function cpuSnapshot(children: Record<string, number>): CpuSnapshot {
  const usage = process.cpuUsage();
  return {
    atMs: performance.now(),
    benchMs: (usage.user + usage.system) / 1000,
    children: Object.fromEntries(Object.entries(children).map(([name, pid]) => [name, groupCpuMs(pid)])),
    machineBusyMs: machineBusyMs(),
  };
}

/** The processes of a process group (the leader included); [] without /proc. A scan of /proc: a few ms. */
export function groupPids(groupId: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    // pgrp is field 5 of the line, 3rd after the name.
    if (fields && Number(fields[2]) === groupId) pids.push(Number(entry));
  }
  return pids;
}

/** CPU time so far of each process in the group, ms by pid. */
export function groupCpuByPid(groupId: number): Map<number, number> {
  const byPid = new Map<number, number>();
  for (const pid of groupPids(groupId)) {
    const ms = processCpuMs(pid);
    // A process that exits between the scan and the read drops out (its time is gone from /proc anyway).
    if (ms !== null) byPid.set(pid, ms);
  }
  return byPid;
}

function groupCpuMs(groupId: number): number | null {
  const times = [...groupCpuByPid(groupId).values()];
  return times.length === 0 ? processCpuMs(groupId) : times.reduce((total, ms) => total + ms, 0);
}

/** The fields of /proc/<pid>/stat after the command name (which may contain spaces), from field 3 (state) on. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/**
 * CPU time spent between two snapshots, by process, as a share of one core (1.0 = one core busy the whole time).
 * "other" is the machine's busy time minus the processes listed: PostgreSQL, Redis, the kernel, anything else.
 */
export function cpuBetween(before: CpuSnapshot, after: CpuSnapshot): Record<string, number | null> {
  const wallMs = after.atMs - before.atMs;
  if (wallMs <= 0) return {};
  const share = (ms: number | null) => (ms === null ? null : round(ms / wallMs));
  const out: Record<string, number | null> = { bench: share(after.benchMs - before.benchMs) };
  let known = after.benchMs - before.benchMs;
  for (const name of Object.keys(after.children)) {
    const a = after.children[name];
    const b = before.children[name];
    const ms = a === null || a === undefined || b === null || b === undefined ? null : a - b;
    out[name] = share(ms);
    if (ms !== null) known += ms;
  }
  const machine =
    after.machineBusyMs === null || before.machineBusyMs === null ? null : after.machineBusyMs - before.machineBusyMs;
  out.other = machine === null ? null : share(Math.max(0, machine - known));
  out.total = share(machine);
  return out;
}

function processCpuMs(pid: number): number | null {
  const fields = statFields(pid);
  if (!fields) return null;
  // utime and stime are fields 14 and 15 of the whole line, so 11 and 12 after the name and state.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? ((utime + stime) * 1000) / ticksPerSecond : null;
}

function machineBusyMs(): number | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    const values = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest times are already inside user)
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = values;
    return ((user + nice + system + irq + softirq + steal) * 1000) / ticksPerSecond;
  } catch {
    return null;
  }
}

const round = (value: number) => Math.round(value * 100) / 100;

/** How many cores the machine keeps busy over `ms` (before the benchmark starts anything: other people's load). */
export async function machineBusyCores(ms = 1_000): Promise<number | null> {
  const before = machineBusyMs();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = machineBusyMs();
  if (before === null || after === null) return null;
  return round((after - before) / (performance.now() - started));
}
