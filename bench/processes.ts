/**
 * The benchmark's moving parts outside its own process: the mock upstream and the service as child processes, the
 * throwaway PostgreSQL database, the temporary PGlite directory. Each comes with the one call that removes it again;
 * run.ts calls those in reverse order, on success, on failure and on Ctrl-C.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import pg from "pg";
import { groupPids } from "./cpu.ts";

/** The repository root: children run from there so `src/…` paths and `node_modules` resolve. */
export const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/** How long a child gets to finish after SIGTERM before it is killed. The service drains in-flight requests. */
const stopGraceMs = 10_000;
/** The most output lines kept per child (the last ones), for the report and for a crash message. */
const maxKeptLines = 2_000;

export interface Child {
  name: string;
  pid: number;
  /** Every line the child wrote to stdout or stderr (the last `maxKeptLines`). */
  lines(): string[];
  /** Set once the child has exited, with how. */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** SIGTERM, then SIGKILL after the grace period. Resolves when the process is gone. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Spawns `node <args>` (with `--import tsx` when the script is TypeScript) in its own process group, so a Ctrl-C in the terminal reaches the benchmark only
 * and the benchmark decides when (and in what order) its children stop.
 */
export function spawnNode(
  name: string,
  args: string[],
  env: Record<string, string>,
  nodeOptions: string[] = [],
): Child {
  const loader = args[0]?.endsWith(".ts") ? ["--import", "tsx"] : [];
  const child: ChildProcess = spawn(process.execPath, [...nodeOptions, ...loader, ...args], {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${args.join(" ")}`);
  const pid = child.pid;

  const kept: string[] = [];
  const keep = (stream: NodeJS.ReadableStream | null) => {
    let partial = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        if (line.trim() === "") continue;
        kept.push(line);
        if (kept.length > maxKeptLines) kept.shift();
      }
    });
    stream?.on("end", () => {
      if (partial.trim() !== "") kept.push(partial);
      partial = "";
    });
  };
  keep(child.stdout);
  keep(child.stderr);

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exitInfo = { code, signal };
      resolve();
    });
  });

  let stopping: Promise<void> | undefined;
  return {
    name,
    pid,
    lines: () => [...kept],
    exit: () => exitInfo,
    stop() {
      stopping ??= (async () => {
        if (exitInfo) return;
        signal(pid, "SIGTERM");
        const timer = delay(stopGraceMs).then(() => "timeout" as const);
        if ((await Promise.race([exited.then(() => "exited" as const), timer])) === "timeout") {
          signal(pid, "SIGKILL");
          await exited;
        }
      })();
      return stopping;
    },
  };
}

/** Signals the child's whole process group (it is the group leader), ignoring a group that is already gone. */
function signal(pid: number, name: NodeJS.Signals) {
  try {
    process.kill(-pid, name);
  } catch {
    try {
      process.kill(pid, name);
    } catch {
      // Gone already.
    }
  }
}

/** Resolves with the first line matching `pattern`; rejects if the child exits or stays silent for `timeoutMs`. */
export async function waitForLine(child: Child, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const line of child.lines()) {
      const match = pattern.exec(line);
      if (match) return match;
    }
    if (child.exit()) throw new ChildFailedError(child, "exited before it was listening");
    await delay(50);
  }
  throw new ChildFailedError(child, `printed no line matching ${pattern} within ${timeoutMs} ms`);
}

/** Polls `GET url` until it answers 200; rejects if the child exits or the time runs out. */
export async function waitForOk(child: Child, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (child.exit()) throw new ChildFailedError(child, "exited before it was ready");
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
      last = `${response.status} ${await response.text()}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await delay(100);
  }
  throw new ChildFailedError(child, `${url} was not 200 within ${timeoutMs} ms (last: ${last})`);
}

/** Waits until the child's process group holds `count` processes (a cluster primary and its workers). */
export async function waitForProcesses(child: Child, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = 0;
  while (Date.now() < deadline) {
    if (child.exit()) throw new ChildFailedError(child, "exited before its workers started");
    seen = groupPids(child.pid).length;
    if (seen >= count) return;
    await delay(100);
  }
  throw new ChildFailedError(child, `ran ${seen} processes, not ${count}, after ${timeoutMs} ms`);
}

export class ChildFailedError extends Error {
  constructor(child: Child, what: string) {
    const exit = child.exit();
    const how = exit ? ` (exit code ${exit.code}, signal ${exit.signal})` : "";
    const tail = child.lines().slice(-30).join("\n  ");
    super(`${child.name} ${what}${how}; its last output:\n  ${tail || "(nothing)"}`);
    this.name = "ChildFailedError";
  }
}

// The service needs a number in PORT (the mock takes 0 and says its own); the tests' helper finds one.
export { freePort } from "../test/helpers/processes.ts";

export interface ThrowawayDatabase {
  name: string;
  url: string;
  /** Drops the database, ending any session still on it. Idempotent. */
  drop(): Promise<void>;
}

/** A fresh `arh_bench_<random>` database on the server behind `adminUrl`, created as that URL's user. */
export async function createThrowawayDatabase(adminUrl: string): Promise<ThrowawayDatabase> {
  const name = `arh_bench_${randomBytes(6).toString("hex")}`;
  await withClient(adminUrl, (client) => client.query(`create database ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    name,
    url: url.toString(),
    drop() {
      // WITH (FORCE), PostgreSQL 13+: a service killed mid-shutdown may leave sessions behind.
      dropped ??= withClient(adminUrl, async (client) => {
        await client.query(`drop database if exists ${name} with (force)`);
      });
      return dropped;
    },
  };
}

async function withClient<T>(url: string, task: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: "arh-bench" });
  await client.connect();
  try {
    return await task(client);
  } finally {
    await client.end();
  }
}

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

export async function createTempDir(prefix: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * Deletes the cache entries of the benchmark's user (src/cache/redis-cache.ts keys them
 * `arh:cache:<user id>:<digest>`) and returns how many there were.
 */
export async function deleteCacheEntries(redisUrl: string, userId: string): Promise<number> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2_000 });
  await redis.connect();
  try {
    let cursor = "0";
    let deleted = 0;
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `arh:cache:${userId}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== "0");
    return deleted;
  } finally {
    redis.disconnect();
  }
}

/** `npm run build`: the service is measured as `npm start` runs it, compiled, not under tsx. */
export function buildService(): void {
  const built = spawnSync(process.execPath, ["scripts/build.mjs"], { cwd: repoRoot, stdio: "inherit" });
  if (built.status !== 0) throw new Error("the build failed (npm run build)");
}

/** The node options `npm start` gives the service (package.json's start script), so the benchmark runs it alike. */
export function serviceNodeOptions(): string[] {
  const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { scripts: { start: string } };
  const options = /\bnode\s+(.*?)\s*dist\/cli\.js serve/.exec(manifest.scripts.start)?.[1];
  if (options === undefined) throw new Error(`package.json's start script does not run dist/cli.js serve`);
  return options.split(/\s+/).filter(Boolean);
}
