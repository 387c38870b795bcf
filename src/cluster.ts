import cluster, { type Worker } from "node:cluster";
import { type Config, ConfigError } from "./config.ts";
import { createDatabase, migrateDatabase } from "./db/client.ts";
import { createLogger } from "./observability/logger.ts";
import { redisTargetOf } from "./redis-connection.ts";

/** The longest the primary waits for its workers to drain after a signal (their own grace period, and some). */
const drainMs = 35_000;

/**
 * `WORKERS=N`: N processes behind one port (node:cluster), for more than one core. Every worker is a complete
 * service; they share state only through PostgreSQL and Redis, so both are required: the embedded database
 * belongs to one process, and in-process limits and caches would multiply by N.
 */
export async function runPrimary(config: Config): Promise<void> {
  if (!config.DATABASE_URL || !redisTargetOf(config)) {
    throw new ConfigError(
      `invalid configuration: WORKERS=${config.WORKERS}: more than one worker needs DATABASE_URL and REDIS_URL (or REDIS_CLUSTER_NODES) ` +
        "(the embedded database and in-process limits belong to one process)",
    );
  }
  const logger = createLogger(config.LOG_LEVEL);

  // Migrate once here, so the workers start on an up-to-date schema instead of queueing on the migration lock.
  const database = await createDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR });
  try {
    await migrateDatabase(database);
  } finally {
    await database.close();
  }

  let stopping = false;
  const fork = () => cluster.fork();
  cluster.on("exit", (worker: Worker, code, signal) => {
    if (stopping) return;
    logger.error({ pid: worker.process.pid, code, signal }, "worker died; starting another");
    setTimeout(fork, 500).unref();
  });
  for (let i = 0; i < config.WORKERS; i++) fork();
  logger.info({ workers: config.WORKERS, port: config.PORT }, "primary started its workers");

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, "stopping the workers: each finishes what it has in flight");
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGTERM");
    setTimeout(() => process.exit(1), drainMs).unref();
    const check = setInterval(() => {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        clearInterval(check);
        process.exit(0);
      }
    }, 50);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
