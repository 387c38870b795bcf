/**
 * `npm run bench`: the load benchmark. Starts the mock upstream, a bare proxy in front of it and the service as child
 * processes, measures the baselines (the mock alone, one proxy hop) and the service's paths with autocannon in
 * alternating rounds, probes streaming's time to first byte and the database's commit latency in the same rounds,
 * samples the service's memory throughout (and over a soak, with --soak), prints one table of medians and ratios to
 * the baselines with the targets after it, writes it all to bench/results/<time>.json, and cleans up whatever
 * happens. Never a test: see bench/README.md for what the numbers mean and depend on.
 */
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { configSchema } from "../src/config.ts";
import { createBenchUser, sendOnce } from "./api.ts";
import { groupCpuByPid, machineBusyCores } from "./cpu.ts";
import { startRssSampler } from "./memory.ts";
import {
  type CommitProbeRound,
  createCommitTable,
  probeCommits,
  probeStreams,
  type StreamProbeRound,
} from "./probes.ts";
import {
  type Child,
  ChildFailedError,
  createTempDir,
  createThrowawayDatabase,
  deleteCacheEntries,
  freePort,
  repoRoot,
  buildService,
  serviceNodeOptions,
  spawnNode,
  waitForLine,
  waitForOk,
  waitForProcesses,
} from "./processes.ts";
import { type Options, parseOptions, usage } from "./options.ts";
import { formatProfile, summarizeProfile } from "./profile.ts";
import {
  contentionNote,
  describeGit,
  describeMachine,
  formatTable,
  problems,
  serviceLogProblems,
  summarize,
  summarizeLines,
  tableLegend,
  writeResults,
} from "./report.ts";
import {
  benchModel,
  createInputs,
  createScenarios,
  type MeasureContext,
  measure,
  type RunResult,
  round,
  stopCurrentLoad,
} from "./scenarios.ts";
import {
  checkTargets,
  formatCommits,
  formatMemory,
  formatSoak,
  formatStreams,
  formatTargets,
  type SoakSummary,
  summarizeCommits,
  summarizeMemory,
  summarizeStreams,
  verdict,
} from "./summary.ts";

/** Seconds each round's commit probe runs (one client, so a few thousand commits on a quick disk). */
const commitProbeSeconds = 2;
/** Streamed calls each way in the probe's warm-up. */
const streamWarmupRequests = 50;
/** How long the service idles before each of the soak's two RSS samples. */
const soakIdleMs = 10_000;

/** Undo steps, run last-in first-out exactly once, each one even if an earlier one failed. */
function createCleanup() {
  const steps: Array<{ name: string; run: () => Promise<unknown> }> = [];
  let running: Promise<void> | undefined;
  return {
    add(name: string, run: () => Promise<unknown>) {
      steps.push({ name, run });
    },
    run() {
      running ??= (async () => {
        for (const step of steps.reverse()) {
          try {
            await step.run();
          } catch (error) {
            console.error(`cleanup: ${step.name} failed: ${error instanceof Error ? error.message : String(error)}`);
          }
        }
      })();
      return running;
    },
  };
}

class Interrupted extends Error {}

const log = (message: string) => process.stderr.write(`${message}\n`);

async function main(): Promise<number> {
  let options: Options | undefined;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${usage}`);
    return 2;
  }
  if (!options) {
    console.log(usage);
    return 0;
  }

  const startedAt = new Date();
  const runId = randomBytes(4).toString("hex");
  const cleanup = createCleanup();
  const children: Child[] = [];
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      // A second Ctrl-C: stop waiting for a graceful shutdown.
      for (const child of children) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {}
      }
      log(`${signal} again: children killed; the database or temp dir named above may be left behind`);
      process.exit(130);
    }
    interrupted = true;
    log(`\n${signal}: stopping the load and cleaning up (again to force)`);
    stopCurrentLoad();
    void cleanup.run().finally(() => process.exit(130));
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, onSignal);
  const checkpoint = () => {
    if (interrupted) throw new Interrupted();
    for (const child of children) if (child.exit()) throw new ChildFailedError(child, "exited during the benchmark");
  };

  const levels = [...new Set([1, options.connections])];
  const runsPerPass = levels.length * options.scenarios.length;
  const streamProbe = options.scenarios.includes("v1-stream");
  const commitProbe = !options.embedded && options.scenarios.includes("miss");
  // Per round: the autocannon runs (plus ~0.3 s of settling each), ~3 ms per streamed call pair, the commit probe.
  const roundSeconds =
    runsPerPass * (options.durationSeconds + 0.3) +
    (streamProbe ? options.streamRequests * 0.003 : 0) +
    (commitProbe ? commitProbeSeconds + 0.5 : 0);
  const estimateSeconds =
    10 +
    runsPerPass * (options.warmupSeconds + 0.3) +
    options.rounds * roundSeconds +
    (options.soakMinutes === null ? 0 : options.soakMinutes * 60 + (2 * soakIdleMs) / 1000);
  const mode = options.embedded ? "PGlite + memory cache" : "PostgreSQL + Redis";
  log(
    `bench ${runId}: ${mode}${options.workers > 1 ? `, ${options.workers} service workers` : ""}, ` +
      `${options.scenarios.join("/")} at ${levels.join(" and ")} connections, ` +
      `${options.warmupSeconds} s warm-up + ${options.rounds} × ${options.durationSeconds} s rounds` +
      `${options.soakMinutes === null ? "" : `, ${options.soakMinutes} min soak`} ` +
      `(about ${Math.max(1, Math.round(estimateSeconds / 60))} min)`,
  );

  // Other people's load skews every figure; say so up front (the table's "other" column shows it during the runs).
  const busyBeforeCores = await machineBusyCores();
  if (busyBeforeCores !== null) {
    const note = busyBeforeCores > 0.25 ? " — the machine is not idle; expect noisy numbers" : "";
    log(`machine before start: ${busyBeforeCores} of ${cpus().length} cores busy${note}`);
  }

  const failures: string[] = [];
  const warmups: RunResult[] = [];
  const runs: RunResult[] = [];
  const streamRounds: StreamProbeRound[] = [];
  const commitRounds: CommitProbeRound[] = [];
  let soakRun: RunResult | undefined;
  let soak: SoakSummary | null = null;
  let rssAtStartMb: number | null = null;
  let rssPeakWholeRunMb: number | null = null;
  let rssSamples: Array<[number, number]> = [];
  let serviceProcesses = 1;
  let workerShares: Record<string, number> | null = null;
  let serviceLog: string[] = [];
  let profileSummary: string | undefined;
  let database = "";
  try {
    // Storage: a throwaway database (or a temp dir for PGlite), gone again at the end.
    const workDir = await createTempDir("arh-bench-");
    cleanup.add(`remove ${workDir.path}`, () => workDir.remove());
    const storageEnv: Record<string, string> = {};
    let databaseUrl: string | undefined;
    if (options.embedded) {
      storageEnv.DATA_DIR = join(workDir.path, "data");
      database = `PGlite in ${storageEnv.DATA_DIR}`;
    } else {
      const created = await createThrowawayDatabase(options.databaseAdminUrl);
      cleanup.add(`drop database ${created.name}`, () => created.drop());
      databaseUrl = created.url;
      storageEnv.DATABASE_URL = created.url;
      storageEnv.REDIS_URL = options.redisUrl;
      database = `PostgreSQL database ${created.name}`;
      if (commitProbe) await createCommitTable(created.url);
    }
    log(`storage: ${database}`);
    checkpoint();

    const mock = spawnNode("mock upstream", ["src/mock-upstream/main.ts", "--port", "0", "--api-key", "sk-bench"], {
      ...inheritedEnv(),
    });
    children.push(mock);
    cleanup.add("stop the mock upstream", () => mock.stop());
    const mockUrl = (await waitForLine(mock, /listening on (http:\/\/\S+\/v1)\b/, 30_000))[1] ?? "";
    const mockOrigin = new URL(mockUrl).origin;
    log(`mock upstream: ${mockUrl} (pid ${mock.pid})`);
    checkpoint();

    const pids: Record<string, number> = { mock: mock.pid };
    let proxyOrigin = "";
    if (options.scenarios.includes("proxy")) {
      const proxy = spawnNode("bare proxy", ["bench/bare-proxy.ts", "--upstream", mockOrigin], inheritedEnv());
      children.push(proxy);
      cleanup.add("stop the bare proxy", () => proxy.stop());
      proxyOrigin = (await waitForLine(proxy, /bare proxy listening on (http:\/\/\S+)/, 30_000))[1] ?? "";
      pids.proxy = proxy.pid;
      log(`bare proxy: ${proxyOrigin} (pid ${proxy.pid})`);
      checkpoint();
    }

    const adminKey = `bench-admin-${randomBytes(24).toString("hex")}`;
    const port = await freePort();
    const profileDir = join(repoRoot, "bench", "results", "profiles");
    // --workers N is the service's own WORKERS=N: a node:cluster primary and N workers behind the one port.
    const clustered = options.workers > 1;
    // The service as `npm start` runs it: compiled to dist/ first.
    buildService();
    const service = spawnNode(
      "service",
      ["dist/cli.js", "serve"],
      {
        ...inheritedEnv(),
        // Every configuration variable blank (= the service's default), so a developer's .env or shell cannot
        // change what is measured; then the benchmark's own.
        ...Object.fromEntries(Object.keys(configSchema.shape).map((name) => [name, ""])),
        PORT: String(port),
        HOST: "127.0.0.1",
        OPENAI_API_KEY: "sk-bench",
        OPENAI_BASE_URL: mockUrl,
        ADMIN_API_KEY: adminKey,
        LOG_LEVEL: "warn",
        DEFAULT_CHAT_MODEL: benchModel,
        WORKERS: String(options.workers),
        ...storageEnv,
      },
      [...serviceNodeOptions(), ...(options.cpuProf ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [])],
    );
    children.push(service);
    pids.service = service.pid;
    const serviceUrl = `http://127.0.0.1:${port}`;
    // Registered after the storage, so it runs before the database is dropped.
    let serviceStopped = false;
    const stopService = async () => {
      if (serviceStopped) return;
      serviceStopped = true;
      await service.stop();
    };
    cleanup.add("stop the service", stopService);
    await waitForOk(service, `${serviceUrl}/ready`, 60_000);
    // The primary and its workers. /ready answers once one worker listens; the others follow within the warm-up,
    // and the rounds check that every worker did its share (workerShares below).
    serviceProcesses = clustered ? options.workers + 1 : 1;
    if (clustered) await waitForProcesses(service, serviceProcesses, 30_000);
    log(`service: ${serviceUrl} (pid ${service.pid}${clustered ? `, ${serviceProcesses} processes` : ""})`);
    checkpoint();

    // Sampled from the start, so the whole run's peak is known; the rounds' own peaks come from the same samples.
    const rss = startRssSampler(service.pid);
    cleanup.add("stop sampling memory", async () => rss.stop());

    const user = await createBenchUser(serviceUrl, adminKey, runId, options.withLimits);
    if (!options.embedded) {
      const redisUrl = options.redisUrl;
      cleanup.add("delete the cache entries", async () => {
        const deleted = await deleteCacheEntries(redisUrl, user.userId);
        log(`cleanup: deleted ${deleted} cache entries of ${user.userId} from Redis`);
      });
    }
    const targets = {
      runId,
      mockOrigin,
      proxyOrigin,
      serviceUrl,
      apiKey: user.key,
      sendOnce: (body: string) => sendOnce(serviceUrl, user.key, body),
    };
    const uniqueInput = createInputs(runId);
    const scenarios = createScenarios(targets, uniqueInput);
    const context: MeasureContext = { targets, adminKey, pids, serviceMetrics: !clustered, rss };
    const streamTargets = { mockOrigin, serviceUrl, apiKey: user.key, uniqueInput };

    const describe = (run: RunResult) =>
      `${run.scenario.padEnd(9)} @${String(run.connections).padEnd(3)} ${run.requestsPerSecond.toFixed(0).padStart(6)} req/s` +
      `  p50 ${run.p50Ms.toFixed(2)} ms  p99 ${run.p99Ms.toFixed(2)} ms` +
      (run.rssPeakMb !== null ? `  rss ${run.rssPeakMb.toFixed(0)} MB` : "") +
      (run.cpu.other !== null && run.cpu.other !== undefined ? `  other cpu ${run.cpu.other.toFixed(2)}` : "") +
      (run.non2xx + run.errors + run.unexpected > 0
        ? `  !! ${run.non2xx} non-2xx, ${run.errors} errors, ${run.unexpected} unexpected`
        : "");
    const describeStreams = (probe: StreamProbeRound) =>
      `stream probe ${probe.requests} × 2: TTFB p50 direct ${probe.direct.firstByte.p50Ms} ms, ` +
      `service ${probe.service.firstByte.p50Ms} ms; p99 ${probe.direct.firstByte.p99Ms} / ${probe.service.firstByte.p99Ms} ms`;

    // The monotonic clock V8's profiler stamps its samples with, so the profile summary leaves start-up out.
    const nowUs = () => Number(process.hrtime.bigint() / 1000n);
    const windowStartUs = nowUs();
    if (options.warmupSeconds > 0) {
      for (const connections of levels) {
        for (const name of options.scenarios) {
          checkpoint();
          const run = await measure(scenarios[name], connections, options.warmupSeconds, context);
          warmups.push(run);
          log(`warm-up   ${describe(run)}`);
        }
      }
      if (streamProbe) log(`warm-up   ${describeStreams(await probeStreams(streamTargets, streamWarmupRequests))}`);
    }
    rssAtStartMb = rss.sampleNow()?.rssMb ?? null;
    const cpuByPidBefore = clustered ? groupCpuByPid(service.pid) : undefined;
    // Alternating rounds: round 1 of every scenario and probe, then round 2 of every one …, so drift hits them all
    // alike.
    for (let roundNumber = 1; roundNumber <= options.rounds; roundNumber++) {
      const at = `round ${roundNumber}/${options.rounds}`;
      for (const connections of levels) {
        for (const name of options.scenarios) {
          checkpoint();
          const measured = await measure(scenarios[name], connections, options.durationSeconds, context);
          const run = { ...measured, round: roundNumber };
          runs.push(run);
          log(`${at} ${describe(run)}`);
        }
      }
      if (streamProbe) {
        checkpoint();
        const probe = await probeStreams(streamTargets, options.streamRequests);
        streamRounds.push(probe);
        log(`${at} ${describeStreams(probe)}`);
      }
      if (commitProbe && databaseUrl) {
        checkpoint();
        const probe = await probeCommits(databaseUrl, commitProbeSeconds, workDir.path);
        commitRounds.push(probe);
        log(
          `${at} commit probe (${probe.tool}): ${probe.commits} commits, p50 ${probe.p50Ms} ms, p99 ${probe.p99Ms} ms`,
        );
      }
    }
    checkpoint();
    const windowUs: [number, number] = [windowStartUs, nowUs()];
    if (cpuByPidBefore) {
      workerShares = sharesOfWorkers(cpuByPidBefore, groupCpuByPid(service.pid), service.pid);
      // Connections go to the workers in turn, so each should have done about 1/N of the work. One far below
      // that was probably not serving (still starting, or stuck), and the figures are not those of N workers.
      for (const [pid, share] of Object.entries(workerShares)) {
        if (share < 0.5 / options.workers) {
          failures.push(`worker ${pid} did only ${Math.round(share * 100)} % of the workers' CPU work in the rounds`);
        }
      }
    }

    if (options.soakMinutes !== null) {
      // Idle before each sample, so both catch the service at rest rather than mid-burst.
      log(`soak: ${soakIdleMs / 1000} s idle, then ${options.soakMinutes} min of miss + hit`);
      await delay(soakIdleMs);
      checkpoint();
      const before = rss.sampleNow()?.rssMb ?? null;
      const soakStartedAt = performance.now();
      soakRun = await measure(scenarios.soak, options.connections, Math.round(options.soakMinutes * 60), context);
      const soakEndedAt = performance.now();
      log(`soak done ${describe(soakRun)}`);
      await delay(soakIdleMs);
      checkpoint();
      const after = rss.sampleNow()?.rssMb ?? null;
      // A minute each, or a fifth of a shorter soak; the first seconds left out (connections opening, the heap
      // growing back after the rest).
      const windowMs = Math.min(60_000, (soakEndedAt - soakStartedAt) / 5);
      const first = rss.medianBetween(soakStartedAt + 5_000, soakStartedAt + 5_000 + windowMs);
      const last = rss.medianBetween(soakEndedAt - windowMs, soakEndedAt);
      soak = {
        minutes: options.soakMinutes,
        run: soakRun,
        rssFirstMinuteMb: first,
        rssLastMinuteMb: last,
        changePercent: first !== null && last !== null && first > 0 ? round(((last - first) / first) * 100) : null,
        rssBeforeMb: before,
        rssAfterMb: after,
      };
    }

    rss.stop();
    rssPeakWholeRunMb = rss.peakBetween(Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
    // Compact: [seconds since the first sample, MB].
    const samples = rss.samples();
    const firstAt = samples[0]?.atMs ?? 0;
    rssSamples = samples.map((sample) => [round((sample.atMs - firstAt) / 1000), sample.rssMb]);

    await stopService();
    const exit = service.exit();
    if (exit && exit.code !== 0) failures.push(`the service exited with code ${exit.code} (signal ${exit.signal})`);
    serviceLog = service.lines();
    if (options.cpuProf) profileSummary = await profileOf(profileDir, service.pid, windowUs);
  } catch (error) {
    failures.push(error instanceof Error ? error.message : String(error));
    for (const child of children) if (child.name === "service") serviceLog = child.lines();
  } finally {
    if (!interrupted) await cleanup.run();
  }
  // The signal handler cleans up and exits; nothing measured after a Ctrl-C is reported.
  if (interrupted) await new Promise(() => {});

  failures.push(
    ...problems(warmups, "warm-up"),
    ...problems(runs, "measured"),
    ...problems(soakRun ? [soakRun] : [], "soak"),
  );
  const logProblems = serviceLogProblems(serviceLog);
  failures.push(...logProblems.failures);

  const rows = summarize(runs, options.scenarios, levels);
  const streams = summarizeStreams(streamRounds);
  const commits = summarizeCommits(commitRounds);
  const memory = summarizeMemory(runs, options.connections, rssAtStartMb, rssPeakWholeRunMb, serviceProcesses);
  const targetChecks = checkTargets({
    embedded: options.embedded,
    workers: options.workers,
    connections: options.connections,
    rows,
    streams,
    commits,
    memory,
    soak,
  });
  const contention = contentionNote(runs);
  const finishedAt = new Date();
  const results = {
    ok: failures.length === 0,
    failures,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    runId,
    mode: options.embedded ? "embedded (PGlite + memory cache)" : "PostgreSQL + Redis",
    options,
    machine: { ...describeMachine(), busyBeforeCores, contention: contention ?? null },
    git: describeGit(),
    rows,
    streams,
    commits,
    memory,
    workerShares,
    soak,
    targets: targetChecks.map((check) => ({ ...check, verdict: verdict(check) })),
    runs,
    warmups,
    probes: { streams: streamRounds, commits: commitRounds },
    rssSamples,
    serviceLog: { notable: logProblems.notable.slice(0, 100), lines: serviceLog.length },
    profile: profileSummary ?? null,
  };
  const file = await writeResults(join(repoRoot, "bench", "results"), startedAt, results);

  const cores = cpus().length;
  console.log("");
  console.log(
    `${results.mode}${options.workers > 1 ? `, service in ${options.workers} workers` : ""}` +
      `${options.withLimits ? "" : ", no limits"}, ${cores} cores, node ${process.version}, ` +
      `${results.git.commit}${results.git.dirty ? " (dirty)" : ""}`,
  );
  if (failures.length > 0) console.log("!! FAILED RUN: the reasons are listed at the end; do not use these numbers");
  if (rows.length > 0) {
    console.log(formatTable(rows));
    console.log(`\n${tableLegend(cores)}`);
  }
  if (streams) console.log(`\n${formatStreams(streams)}`);
  if (commits)
    console.log(
      `\n${formatCommits(
        commits,
        rows.find((row) => row.scenario === "miss" && row.connections === 1),
      )}`,
    );
  console.log(`\n${formatMemory(memory)}`);
  if (workerShares) {
    const shares = Object.values(workerShares).map((share) => share.toFixed(2));
    console.log(`workers: each one's share of the workers' CPU time in the rounds: ${shares.join(" / ")}`);
  }
  if (soak) console.log(formatSoak(soak));
  if (targetChecks.length > 0) console.log(`\n${formatTargets(targetChecks)}`);
  if (logProblems.notable.length > 0) {
    console.log(`\nservice log, warnings and errors (${logProblems.notable.length}):`);
    for (const line of summarizeLines(logProblems.notable)) console.log(`  ${line}`);
  }
  if (contention) console.log(`\n!! ${contention}`);
  if (profileSummary) console.log(`\n${profileSummary}`);
  console.log(`\nresults: ${file}`);
  if (failures.length > 0) {
    console.error("\nBENCHMARK FAILED: these numbers are not to be trusted.");
    for (const failure of failures) console.error(`  - ${failure}`);
    return 1;
  }
  return 0;
}

/** Each worker's share of the CPU time its siblings used between two readings (the primary left out), by pid. */
function sharesOfWorkers(
  before: Map<number, number>,
  after: Map<number, number>,
  primaryPid: number,
): Record<string, number> {
  const used = [...after.entries()]
    .filter(([pid]) => pid !== primaryPid)
    .map(([pid, ms]) => [pid, ms - (before.get(pid) ?? 0)] as const);
  const total = used.reduce((sum, [, ms]) => sum + ms, 0);
  return Object.fromEntries(used.map(([pid, ms]) => [String(pid), total > 0 ? round(ms / total) : 0]));
}

/** The environment minus every service configuration variable. */
function inheritedEnv(): Record<string, string> {
  const names = new Set(Object.keys(configSchema.shape));
  names.add("MOCK_UPSTREAM_PORT");
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] => entry[1] !== undefined && !names.has(entry[0]),
    ),
  );
}

async function profileOf(directory: string, pid: number, windowUs: [number, number]): Promise<string> {
  const file = (await readdir(directory)).filter(
    (name) => name.includes(`.${pid}.`) && name.endsWith(".cpuprofile"),
  )[0];
  if (!file) return `no profile of pid ${pid} in ${directory}`;
  const path = join(directory, file);
  return `service CPU profile: ${path}\n${formatProfile(await summarizeProfile(path, 25, windowUs))}`;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
