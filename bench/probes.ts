/**
 * Two small measurements beside the autocannon runs, each repeated once per round like every scenario:
 *
 * - the stream probe: time to first byte of a streamed chat completion, straight from the mock and through the
 *   service, one request at a time (autocannon only sees whole responses);
 * - the commit probe: the latency of one durable single-row INSERT commit on the same PostgreSQL server, the floor
 *   under every `201` of the service (it answers once its record is committed).
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { delimiter, join } from "node:path";
import pg from "pg";
import { mockRequestCount } from "./api.ts";
import { percentile, round, streamBodies } from "./scenarios.ts";

/** Percentiles of one probe round, ms. */
export interface Timing {
  p50Ms: number;
  p99Ms: number;
}

export interface StreamProbeRound {
  requests: number;
  /** From the request written to the first byte of the body (the first SSE event), and to its end. */
  direct: { firstByte: Timing; total: Timing };
  service: { firstByte: Timing; total: Timing };
}

export interface StreamProbeTargets {
  mockOrigin: string;
  serviceUrl: string;
  apiKey: string;
  uniqueInput(): string;
}

/**
 * `requests` streamed calls to the mock and as many through the service's `/v1/chat/completions`, alternating one by
 * one so drift touches both alike, each on a kept-alive connection of its own and never two at a time. The direct
 * call sends exactly what the service sends upstream. Every input is unique, so the service's calls are cache misses
 * that really stream from the upstream. Throws on any answer that is not a complete 200 stream (a miss, from the
 * service) or when the mock saw other than one call per answer.
 */
export async function probeStreams(targets: StreamProbeTargets, requests: number): Promise<StreamProbeRound> {
  const direct = { agent: new Agent({ keepAlive: true, maxSockets: 1 }), first: [] as number[], total: [] as number[] };
  const service = {
    agent: new Agent({ keepAlive: true, maxSockets: 1 }),
    first: [] as number[],
    total: [] as number[],
  };
  const mockBefore = await mockRequestCount(targets.mockOrigin);
  try {
    for (let i = 0; i < requests; i++) {
      const toDirect = () =>
        timedStream(direct.agent, `${targets.mockOrigin}/v1/chat/completions`, "Bearer sk-bench", null, () =>
          streamBodies.upstream(targets.uniqueInput()),
        );
      const toService = () =>
        timedStream(
          service.agent,
          `${targets.serviceUrl}/v1/chat/completions`,
          `Bearer ${targets.apiKey}`,
          "miss",
          () => streamBodies.service(targets.uniqueInput()),
        );
      // Which goes first alternates too: the second of a pair may find caches warmer or the CPU busier.
      const pair = i % 2 === 0 ? [toDirect, toService] : [toService, toDirect];
      for (const send of pair) {
        const timing = await send();
        const into = send === toDirect ? direct : service;
        into.first.push(timing.firstByteMs);
        into.total.push(timing.totalMs);
      }
    }
  } finally {
    direct.agent.destroy();
    service.agent.destroy();
  }
  const calls = (await mockRequestCount(targets.mockOrigin)) - mockBefore;
  if (calls !== 2 * requests) {
    throw new Error(`stream probe: the mock saw ${calls} calls for ${2 * requests} streamed answers`);
  }
  const timing = (values: number[]): Timing => {
    const sorted = Float64Array.from(values).sort();
    return { p50Ms: round(percentile(sorted, 50)), p99Ms: round(percentile(sorted, 99)) };
  };
  return {
    requests,
    direct: { firstByte: timing(direct.first), total: timing(direct.total) },
    service: { firstByte: timing(service.first), total: timing(service.total) },
  };
}

/** One streamed call: ms to the first body byte and to the end; throws unless it is a complete stream. */
function timedStream(
  agent: Agent,
  url: string,
  authorization: string,
  expectCache: string | null,
  body: () => string,
): Promise<{ firstByteMs: number; totalMs: number }> {
  const payload = body();
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let firstByteMs: number | undefined;
    const outgoing = request(
      url,
      {
        method: "POST",
        agent,
        headers: {
          authorization,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
        },
      },
      (answer) => {
        let text = "";
        answer.setEncoding("utf8");
        answer.on("data", (chunk: string) => {
          firstByteMs ??= performance.now() - started;
          text += chunk;
        });
        answer.on("error", reject);
        answer.on("end", () => {
          const totalMs = performance.now() - started;
          const cache = answer.headers["x-cache"];
          if (answer.statusCode !== 200) {
            reject(new Error(`stream probe: ${url} answered ${answer.statusCode}: ${text.slice(0, 300)}`));
          } else if (expectCache !== null && cache !== expectCache) {
            reject(new Error(`stream probe: ${url} answered x-cache: ${cache ?? "(none)"}, expected ${expectCache}`));
          } else if (!text.endsWith("data: [DONE]\n\n")) {
            reject(new Error(`stream probe: ${url} ended without data: [DONE]: …${text.slice(-200)}`));
          } else {
            resolve({ firstByteMs: firstByteMs ?? totalMs, totalMs });
          }
        });
      },
    );
    outgoing.setTimeout(10_000, () => outgoing.destroy(new Error(`stream probe: ${url} took over 10 s`)));
    outgoing.on("error", reject);
    outgoing.end(payload);
  });
}

export interface CommitProbeRound extends Timing {
  /** pgbench (a C client, nothing in the way) or, without it, a node-postgres loop (adds ~0.1 ms of client). */
  tool: "pgbench" | "node-postgres";
  commits: number;
}

/** The table the commit probe inserts into, in the benchmark's throwaway database (dropped with it). */
const commitTable = "arh_bench_commit";
/** About the size of a request record's text columns, so the WAL record is not unrealistically small. */
const commitStatement = `insert into ${commitTable} (payload) values (repeat('x', 400))`;

export async function createCommitTable(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: "arh-bench" });
  await client.connect();
  try {
    await client.query(
      `create table if not exists ${commitTable} ` +
        "(id bigserial primary key, created_at timestamptz not null default now(), payload text not null)",
    );
  } finally {
    await client.end();
  }
}

/**
 * One client doing autocommit single-row INSERTs for `seconds`: each is one transaction, so each waits for its WAL
 * flush exactly as the service's record commit does (with the server's own synchronous_commit and fsync settings).
 */
export async function probeCommits(databaseUrl: string, seconds: number, workDir: string): Promise<CommitProbeRound> {
  const pgbench = findPgbench();
  if (!pgbench) return probeCommitsWithClient(databaseUrl, seconds);
  const script = join(workDir, "commit.sql");
  const prefix = "commit-log";
  await writeFile(script, `${commitStatement};\n`);
  // -n: no vacuum of pgbench's own tables (there are none); -l: one line per transaction with its latency in µs.
  await run(
    pgbench,
    ["-n", "-c", "1", "-j", "1", "-T", String(seconds), "-f", script, "-l", `--log-prefix=${prefix}`, databaseUrl],
    workDir,
  );
  const latenciesMs: number[] = [];
  for (const file of (await readdir(workDir)).filter((name) => name.startsWith(`${prefix}.`))) {
    // client_id transaction_no time_us script_no time_epoch time_us_in_epoch
    for (const line of (await readFile(join(workDir, file), "utf8")).split("\n")) {
      const micros = Number(line.split(" ")[2]);
      if (line !== "" && Number.isFinite(micros)) latenciesMs.push(micros / 1000);
    }
    await rm(join(workDir, file));
  }
  if (latenciesMs.length === 0) throw new Error("commit probe: pgbench logged no transactions");
  return { tool: "pgbench", commits: latenciesMs.length, ...timingOf(latenciesMs) };
}

async function probeCommitsWithClient(databaseUrl: string, seconds: number): Promise<CommitProbeRound> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: "arh-bench" });
  await client.connect();
  const latenciesMs: number[] = [];
  try {
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until) {
      const started = performance.now();
      await client.query(commitStatement);
      latenciesMs.push(performance.now() - started);
    }
  } finally {
    await client.end();
  }
  return { tool: "node-postgres", commits: latenciesMs.length, ...timingOf(latenciesMs) };
}

function timingOf(values: number[]): Timing {
  const sorted = Float64Array.from(values).sort();
  return { p50Ms: round(percentile(sorted, 50)), p99Ms: round(percentile(sorted, 99)) };
}

/** pgbench on PATH, else in Debian's versioned PostgreSQL directories (the newest first). */
function findPgbench(): string | undefined {
  const onPath = (process.env.PATH ?? "").split(delimiter).map((dir) => join(dir, "pgbench"));
  let versioned: string[] = [];
  try {
    versioned = readdirSync("/usr/lib/postgresql")
      .sort((a, b) => Number(b) - Number(a))
      .map((version) => join("/usr/lib/postgresql", version, "bin", "pgbench"));
  } catch {}
  return [...onPath, ...versioned].find((path) => existsSync(path));
}

function run(command: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, timeout: 60_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`${command} failed: ${error.message}\n${stderr}`));
      else resolve();
    });
  });
}
