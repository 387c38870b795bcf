/**
 * The benchmark's command line: what `npm run bench -- …` accepts, checked once, with the defaults of a run that
 * takes about four minutes.
 */
import { parseArgs } from "node:util";
import { scenarioNames } from "./scenarios.ts";

export const usage = `usage: npm run bench -- [options]

  --duration <s>       seconds per measured round (default 4)
  --rounds <n>         measured rounds per scenario and concurrency (default 3)
  --connections <n>    the throughput concurrency; every scenario also runs at 1 for latency (default 32)
  --warmup <s>         seconds of discarded warm-up per scenario and concurrency (default 5)
  --embedded           PGlite in a temporary DATA_DIR and the memory cache, instead of PostgreSQL and Redis
  --scenarios <list>   a comma-separated subset of ${scenarioNames.join(",")} (default all;
                       × proxy needs proxy, the added latency needs direct)
  --stream-requests <n>  streamed calls each way per round of the time-to-first-byte probe (default 300)
  --soak [minutes]     after the rounds, miss + hit at --connections for that long (default 5); RSS before and after
  --workers <n>        the service with WORKERS=n: n processes behind one port (PostgreSQL + Redis only)
  --without-limits     the bench user without rate limits and budget (by default they are set, far too high to bite)
  --cpu-prof           run the service under node --cpu-prof and print its top self-time functions
  --database-admin-url <url>  where the throwaway database is created (default postgres://postgres@127.0.0.1:5432/test)
  --redis-url <url>    the Redis the service caches in (default redis://127.0.0.1:6379)`;

export interface Options {
  durationSeconds: number;
  rounds: number;
  connections: number;
  warmupSeconds: number;
  embedded: boolean;
  scenarios: Array<(typeof scenarioNames)[number]>;
  streamRequests: number;
  soakMinutes: number | null;
  workers: number;
  withLimits: boolean;
  cpuProf: boolean;
  databaseAdminUrl: string;
  redisUrl: string;
}

class UsageError extends Error {}

export function parseOptions(argv: string[]): Options | undefined {
  // `--soak` may come without its minutes; parseArgs wants a value for a string option, so give it the default.
  const args = argv.flatMap((arg, i) =>
    arg === "--soak" && (argv[i + 1] === undefined || argv[i + 1]?.startsWith("--")) ? [arg, "5"] : [arg],
  );
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      duration: { type: "string", default: "4" },
      rounds: { type: "string", default: "3" },
      connections: { type: "string", default: "32" },
      warmup: { type: "string", default: "5" },
      embedded: { type: "boolean", default: false },
      scenarios: { type: "string", default: scenarioNames.join(",") },
      "stream-requests": { type: "string", default: "300" },
      soak: { type: "string" },
      workers: { type: "string", default: "1" },
      "without-limits": { type: "boolean", default: false },
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
  const soakMinutes = values.soak === undefined ? null : Number(values.soak);
  if (soakMinutes !== null && !(soakMinutes > 0)) throw new UsageError("--soak: expected minutes > 0");
  const workers = integer("workers", values.workers, 1);
  // PGlite and the memory cache live inside one process; N processes would be N separate services.
  if (workers > 1 && values.embedded) throw new UsageError("--workers: needs PostgreSQL and Redis, not --embedded");
  // Each worker would write a profile of its own, and the summary reads one.
  if (workers > 1 && values["cpu-prof"]) throw new UsageError("--workers: not with --cpu-prof");
  return {
    durationSeconds: integer("duration", values.duration, 1),
    rounds: integer("rounds", values.rounds, 1),
    connections: integer("connections", values.connections, 1),
    warmupSeconds: integer("warmup", values.warmup, 0),
    embedded: values.embedded,
    // In the canonical order, whatever order they were given in.
    scenarios: scenarioNames.filter((name) => scenarios.includes(name)),
    streamRequests: integer("stream-requests", values["stream-requests"], 1),
    soakMinutes,
    workers,
    withLimits: !values["without-limits"],
    cpuProf: values["cpu-prof"],
    databaseAdminUrl: values["database-admin-url"],
    redisUrl: values["redis-url"],
  };
}
