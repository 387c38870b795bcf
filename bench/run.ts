/**
 * `npm run bench`: the load benchmark. Starts the mock upstream and the service as child processes, measures the
 * direct baseline and the service's miss and hit paths with autocannon in alternating rounds, prints one table of
 * medians and ratios to the baseline, writes it to bench/results/<time>.json, and cleans up whatever happens.
 * Never a test: see bench/README.md for what the numbers mean and depend on.
 */
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { configSchema } from "../src/config.ts";
import { createBenchUser, sendOnce } from "./api.ts";
import { machineBusyCores } from "./cpu.ts";
import {
  type Child,
  ChildFailedError,
  createTempDir,
  createThrowawayDatabase,
  deleteCacheEntries,
  freePort,
  repoRoot,
  spawnNode,
  waitForLine,
  waitForOk,
} from "./processes.ts";
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
  createScenarios,
  type MeasureContext,
  measure,
  type RunResult,
  type ScenarioName,
  scenarioNames,
  stopCurrentLoad,
} from "./scenarios.ts";

const usage = `usage: npm run bench -- [options]

  --duration <s>       seconds per measured round (default 5)
  --rounds <n>         measured rounds per scenario and concurrency (default 3)
  --connections <n>    the throughput concurrency; every scenario also runs at 1 for latency (default 32)
  --warmup <s>         seconds of discarded warm-up per scenario and concurrency (default 8)
  --embedded           PGlite in a temporary DATA_DIR and the memory cache, instead of PostgreSQL and Redis
  --scenarios <list>   a comma-separated subset of direct,miss,hit (default all; ratios need direct)
  --cpu-prof           run the service under node --cpu-prof and print its top self-time functions
  --database-admin-url <url>  where the throwaway database is created (default postgres://postgres@127.0.0.1:5432/test)
  --redis-url <url>    the Redis the service caches in (default redis://127.0.0.1:6379)`;

interface Options {
  durationSeconds: number;
  rounds: number;
  connections: number;
  warmupSeconds: number;
  embedded: boolean;
  scenarios: ScenarioName[];
  cpuProf: boolean;
  databaseAdminUrl: string;
  redisUrl: string;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      duration: { type: "string", default: "5" },
      rounds: { type: "string", default: "3" },
      connections: { type: "string", default: "32" },
      warmup: { type: "string", default: "8" },
      embedded: { type: "boolean", default: false },
      scenarios: { type: "string", default: scenarioNames.join(",") },
      "cpu-prof": { type: "boolean", default: false },
      "database-admin-url": { type: "string", default: "postgres://postgres@127.0.0.1:5432/test" },
      "redis-url": { type: "string", default: "redis://127.0.0.1:6379" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return undefined;
  const integer = (name: string, value: string, min: number) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min) throw new UsageError(`--${name}: expected an integer >= ${min}`);
    return parsed;
  };
  const scenarios = values.scenarios.split(",").map((name) => name.trim());
  for (const name of scenarios) {
    if (!(scenarioNames as readonly string[]).includes(name)) throw new UsageError(`--scenarios: unknown ${name}`);
  }
  return {
    durationSeconds: integer("duration", values.duration, 1),
    rounds: integer("rounds", values.rounds, 1),
    connections: integer("connections", values.connections, 1),
    warmupSeconds: integer("warmup", values.warmup, 0),
    embedded: values.embedded,
    // In the canonical order, whatever order they were given in.
    scenarios: scenarioNames.filter((name) => scenarios.includes(name)),
    cpuProf: values["cpu-prof"],
    databaseAdminUrl: values["database-admin-url"],
    redisUrl: values["redis-url"],
  };
}

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
  const estimateSeconds = runsPerPass * (options.warmupSeconds + options.rounds * options.durationSeconds + 1);
  log(
    `bench ${runId}: ${options.embedded ? "PGlite + memory cache" : "PostgreSQL + Redis"}, ` +
      `${options.scenarios.join("/")} at ${levels.join(" and ")} connections, ` +
      `${options.warmupSeconds} s warm-up + ${options.rounds} × ${options.durationSeconds} s rounds ` +
      `(about ${Math.ceil(estimateSeconds / 60)} min)`,
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
  let serviceLog: string[] = [];
  let profileSummary: string | undefined;
  let database = "";
  try {
    // Storage: a throwaway database (or a temp dir for PGlite), gone again at the end.
    const storageEnv: Record<string, string> = {};
    if (options.embedded) {
      const dir = await createTempDir("arh-bench-");
      cleanup.add(`remove ${dir.path}`, () => dir.remove());
      storageEnv.DATA_DIR = dir.path;
      database = `PGlite in ${dir.path}`;
    } else {
      const created = await createThrowawayDatabase(options.databaseAdminUrl);
      cleanup.add(`drop database ${created.name}`, () => created.drop());
      storageEnv.DATABASE_URL = created.url;
      storageEnv.REDIS_URL = options.redisUrl;
      database = `PostgreSQL database ${created.name}`;
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

    const adminKey = `bench-admin-${randomBytes(24).toString("hex")}`;
    const port = await freePort();
    const profileDir = join(repoRoot, "bench", "results", "profiles");
    const service = spawnNode(
      "service",
      ["src/cli.ts", "serve"],
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
        ...storageEnv,
      },
      options.cpuProf ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [],
    );
    children.push(service);
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
    log(`service: ${serviceUrl} (pid ${service.pid})`);
    checkpoint();

    const user = await createBenchUser(serviceUrl, adminKey, runId);
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
      serviceUrl,
      apiKey: user.key,
      sendOnce: (body: string) => sendOnce(serviceUrl, user.key, body),
    };
    const scenarios = createScenarios(targets);
    const context: MeasureContext = { targets, adminKey, pids: { service: service.pid, mock: mock.pid } };

    const describe = (run: RunResult) =>
      `${run.scenario.padEnd(6)} @${String(run.connections).padEnd(3)} ${run.requestsPerSecond.toFixed(0).padStart(6)} req/s` +
      `  p50 ${run.p50Ms.toFixed(2)} ms  p99 ${run.p99Ms.toFixed(2)} ms` +
      (run.cpu.other !== null && run.cpu.other !== undefined ? `  other cpu ${run.cpu.other.toFixed(2)}` : "") +
      (run.non2xx + run.errors + run.unexpected > 0
        ? `  !! ${run.non2xx} non-2xx, ${run.errors} errors, ${run.unexpected} unexpected`
        : "");

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
    }
    // Alternating rounds: round 1 of every scenario, then round 2 of every one …, so drift hits them all alike.
    for (let round = 1; round <= options.rounds; round++) {
      for (const connections of levels) {
        for (const name of options.scenarios) {
          checkpoint();
          const run = await measure(scenarios[name], connections, options.durationSeconds, context);
          runs.push(run);
          log(`round ${round}/${options.rounds} ${describe(run)}`);
        }
      }
    }
    checkpoint();
    const windowUs: [number, number] = [windowStartUs, nowUs()];

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

  failures.push(...problems(warmups, "warm-up"), ...problems(runs, "measured"));
  const logProblems = serviceLogProblems(serviceLog);
  failures.push(...logProblems.failures);

  const rows = summarize(runs, options.scenarios, levels);
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
    runs,
    warmups,
    serviceLog: { notable: logProblems.notable.slice(0, 100), lines: serviceLog.length },
    profile: profileSummary ?? null,
  };
  const file = await writeResults(join(repoRoot, "bench", "results"), startedAt, results);

  const cores = cpus().length;
  console.log("");
  console.log(
    `${results.mode}, ${cores} cores, node ${process.version}, ${results.git.commit}${results.git.dirty ? " (dirty)" : ""}`,
  );
  if (failures.length > 0) console.log("!! FAILED RUN: the reasons are listed at the end; do not use these numbers");
  if (rows.length > 0) {
    console.log(formatTable(rows));
    console.log(`\n${tableLegend(cores)}`);
  }
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
