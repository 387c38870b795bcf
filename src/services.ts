import type { Config } from "./config.ts";
import { createMemoryCache } from "./cache/memory-cache.ts";
import { createRedisCache } from "./cache/redis-cache.ts";
import type { ResponseCache } from "./cache/response-cache.ts";
import { type ApiKeyRepository, createApiKeyRepository } from "./db/api-keys.ts";
import { createDatabase, type Database, isRowRejection, migrateDatabase } from "./db/client.ts";
import { createRequestRepository, type RequestRepository, reducedRecord } from "./db/requests.ts";
import { createRequestWriter, type RequestWriter } from "./db/request-writer.ts";
import { createRollupFolder } from "./db/rollup-folder.ts";
import { createQueuedRequestRepository } from "./db/queued-requests.ts";
import { type BatchRepository, createBatchRepository } from "./db/batches.ts";
import { type Acceptance, createAcceptance } from "./queue/accept.ts";
import { type JobQueue, startJobQueue } from "./queue/job-queue.ts";
import { createQueuedRunner } from "./queue/run-queued.ts";
import { type OrphanSweeper, startOrphanSweeper } from "./queue/sweep-orphans.ts";
import { createWebhookRepository, type WebhookRepository } from "./db/webhooks.ts";
import { createSecretBox } from "./webhooks/signing.ts";
import { createWebhookService, type WebhookService } from "./webhooks/webhooks.ts";
import { randomBytes } from "node:crypto";
import { createSessionRepository, type SessionRepository } from "./db/sessions.ts";
import { createUsageRepository, type UsageRepository } from "./db/usage.ts";
import { createOverviewRepository, type OverviewRepository } from "./db/overview.ts";
import { createUserRepository, type UserRepository } from "./db/users.ts";
import { createKeyVerifier, type KeyVerifier } from "./keys/key-verifier.ts";
import { createKeyRevocation, type KeyRevocation } from "./keys/revocation.ts";
import { type AuthFailureLimiter, createAuthFailureLimiter } from "./limits/auth-failures.ts";
import { createLimiter, type Limiter } from "./limits/limiter.ts";
import { createTokenRatios } from "./limits/token-ratios.ts";
import { createLogger, type Logger } from "./observability/logger.ts";
import { createMetrics, type Metrics } from "./observability/metrics.ts";
import { changedErrorReports, throttledWarning } from "./observability/throttled-log.ts";
import { createAnthropicProvider } from "./providers/anthropic-provider.ts";
import { createProviderRegistry } from "./providers/registry.ts";
import type { ProviderRouter } from "./providers/routing.ts";
import { createRedisClient, type RedisClient, type RedisTarget, redisTargetOf } from "./redis-connection.ts";
import { createRequestService, type RequestService } from "./requests/request-service.ts";
import {
  createMemoryIdempotencyStore,
  createRedisIdempotencyStore,
  type IdempotencyStore,
} from "./requests/idempotency-store.ts";
import { createSingleFlight } from "./requests/single-flight.ts";

/** Batches stored within this long of each other are added to the usage rollups in one fold. */
const rollupFoldDelayMs = 1_000;

/** How long a shutdown waits for this instance's running queued requests; the rest are taken up again later. */
const queueStopTimeoutMs = 20_000;

export interface Services {
  logger: Logger;
  metrics: Metrics;
  database: Database;
  redis: RedisClient | undefined;
  cache: ResponseCache;
  /** Every configured provider behind one router: a call goes to the provider that serves its model. */
  provider: ProviderRouter;
  users: UserRepository;
  apiKeys: ApiKeyRepository;
  sessions: SessionRepository;
  requests: RequestRepository;
  usage: UsageRepository;
  /** The dashboard's overview, read from the usage rollups the request writer keeps. */
  overview: OverviewRepository;
  writer: RequestWriter;
  keyVerifier: KeyVerifier;
  keyRevocation: KeyRevocation;
  limiter: Limiter;
  authFailures: AuthFailureLimiter;
  requestService: RequestService;
  readinessChecks: Record<string, () => Promise<void>>;
  /** The queue of requests run in the background (every instance also works it). */
  queue: JobQueue;
  /** Accepts requests into the queue: `Prefer: respond-async` and batches. */
  acceptance: Acceptance;
  batches: BatchRepository;
  /** Users' webhooks: registration and the deliveries of their queued requests' events. */
  webhooks: WebhookRepository;
  webhookService: WebhookService;
  /** Gives queued requests whose job is gone a new one. */
  orphanSweeper: OrphanSweeper;
  idempotencyStore: IdempotencyStore;
  close(): Promise<void>;
}

export interface CreateServicesOptions {
  logger?: Logger;
  /** Apply pending migrations before serving (default true). */
  migrate?: boolean;
}

/** Builds every dependency from the configuration; the app and the CLI both start here. */
export async function createServices(config: Config, options: CreateServicesOptions = {}): Promise<Services> {
  const logger = options.logger ?? createLogger(config.LOG_LEVEL);
  const metrics = createMetrics();

  const database = await createDatabase({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    onError: (error) => logger.error({ err: error }, "database connection error"),
  });
  if (options.migrate !== false) await migrateDatabase(database);

  const redisTarget = redisTargetOf(config);
  const redis = redisTarget ? await connectRedis(redisTarget, logger) : undefined;
  const cache = redis
    ? createRedisCache(redis, (error, unreported) =>
        logger.warn({ err: error, occurrencesSinceLastLine: unreported }, "cache unavailable; answering as a miss"),
      )
    : createMemoryCache(config.CACHE_MAX_ENTRIES);

  const provider = createProviderRegistry({
    openai: { apiKey: config.OPENAI_API_KEY, baseUrl: config.OPENAI_BASE_URL },
    anthropic: config.ANTHROPIC_API_KEY
      ? {
          provider: (policy) =>
            createAnthropicProvider({
              baseUrl: config.ANTHROPIC_BASE_URL,
              apiKey: config.ANTHROPIC_API_KEY as string,
              timeoutMs: policy.timeoutMs,
              connectTimeoutMs: policy.connectTimeoutMs,
              totalTimeoutMs: policy.totalTimeoutMs,
              maxRetries: policy.maxRetries,
            }),
        }
      : undefined,
    files: config.providers,
    policy: {
      timeoutMs: config.UPSTREAM_TIMEOUT_MS,
      connectTimeoutMs: config.UPSTREAM_CONNECT_TIMEOUT_MS,
      totalTimeoutMs: config.UPSTREAM_TOTAL_TIMEOUT_MS,
      maxRetries: config.UPSTREAM_MAX_RETRIES,
      circuitFailureThreshold: config.CIRCUIT_FAILURE_THRESHOLD,
      circuitCoolDownMs: config.CIRCUIT_COOL_DOWN_MS,
    },
    onCircuitChange: (name, state) => {
      logger.warn({ state, provider: name }, `upstream circuit ${state}`);
      metrics.circuitOpen.set({ provider: name }, state === "closed" ? 0 : 1);
    },
  });
  for (const slot of provider.slots()) metrics.circuitOpen.set({ provider: slot.name }, 0);

  const users = createUserRepository(database.db);
  const apiKeys = createApiKeyRepository(database.db);
  const sessions = createSessionRepository(database.db);
  const requests = createRequestRepository(database.db, database.writer);
  const rollupFolder = createRollupFolder({
    runner: database.statements,
    delayMs: rollupFoldDelayMs,
    onError: throttledWarning(logger, "could not add stored requests to the usage rollups; they stay queued"),
  });
  // What a stopped instance queued and did not fold.
  rollupFolder.stored();
  const writer = createRequestWriter({
    insertMany: async (records) => {
      if ((await requests.insertMany(records)) > 0) rollupFolder.stored();
    },
    onError: (error, batchSize) => logger.error({ err: error, batchSize }, "could not store a batch of requests"),
    isRowError: isRowRejection,
    salvage: reducedRecord,
    onSalvaged: (record, error) =>
      logger.error(
        { err: error, requestRecordId: record.id },
        "the database refused a request's content; stored it without input, options and output",
      ),
  });
  const keyVerifier = createKeyVerifier({
    findByHash: (hash) => apiKeys.findActiveByHash(hash),
    ttlMs: config.KEY_CACHE_TTL_MS,
  });
  const keyRevocation = await createKeyRevocation({
    verifier: keyVerifier,
    redis,
    onError: (error, context) =>
      logger.warn({ err: error }, `${context} failed; other instances rely on the key cache TTL`),
  });
  const usage = createUsageRepository(database.db);
  const overview = createOverviewRepository(database.db, () => rollupFolder.foldNow());
  const limiter = createLimiter({
    redis,
    metrics,
    loadMonthSpendUsd: (userId, monthStart) => usage.monthSpendUsd(userId, monthStart),
    onRedisError: (error) => logger.warn({ err: error }, "rate limits unavailable in Redis; counting in this process"),
  });
  const tokenRatios = createTokenRatios({
    redis,
    upstream: config.OPENAI_API_KEY ? config.OPENAI_BASE_URL : "mock",
    onRedisError: throttledWarning(logger, "learned token ratios unavailable in Redis; using this process's own"),
  });
  const authFailures = createAuthFailureLimiter({
    redis,
    failuresPerMinute: config.AUTH_FAILURE_LIMIT,
    blockSeconds: config.AUTH_FAILURE_BLOCK_SECONDS,
  });
  const requestService = createRequestService({
    provider,
    limiter,
    tokenRatios,
    cache,
    writeRecord: (record) => writer.write(record),
    metrics,
    logger,
    cacheTtlSeconds: config.CACHE_TTL_SECONDS,
    defaultChatModel: config.DEFAULT_CHAT_MODEL,
    defaultEmbedModel: config.DEFAULT_EMBED_MODEL,
    fallbacks: config.UPSTREAM_FALLBACKS,
    singleFlight: createSingleFlight({
      redis,
      // The longest another instance may hold a request's answer before the others call the upstream themselves.
      lockTtlMs: Math.min(config.UPSTREAM_TIMEOUT_MS, 60_000),
      onRedisError: throttledWarning(logger, "coalescing across instances unavailable; coalescing in this process"),
    }),
  });

  const queue = await startJobQueue({
    database,
    visibilityTimeoutSeconds: config.QUEUE_VISIBILITY_TIMEOUT_SECONDS,
    pollIntervalMs: config.QUEUE_POLL_INTERVAL_MS,
    deliveryRetryDelaySeconds: config.WEBHOOK_RETRY_DELAY_SECONDS,
    // A delivery job outlives its attempt's deadline before another worker may take it for orphaned.
    deliveryVisibilitySeconds: Math.ceil(config.WEBHOOK_TIMEOUT_MS / 1000) + 5,
    onError: throttledWarning(logger, "the request queue failed; it keeps trying"),
  });
  const webhookRepository = createWebhookRepository(database.statements);
  const webhookService = createWebhookService({
    database,
    webhooks: webhookRepository,
    requests,
    queue,
    secretBox: createSecretBox(
      config.WEBHOOK_SECRET_KEY ??
        Buffer.from(
          await webhookRepository.serviceKey("webhook_secret_key", () => randomBytes(32).toString("base64")),
          "base64",
        ),
    ),
    allowPrivateNetworks: config.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    metrics,
    logger,
  });
  metrics.queue.depth = () => queue.depth();
  const queued = createQueuedRequestRepository(database.statements);
  const acceptance = createAcceptance({
    database,
    queue,
    queued,
    defaultChatModel: config.DEFAULT_CHAT_MODEL,
    defaultEmbedModel: config.DEFAULT_EMBED_MODEL,
    providerOf: (model) => provider.nameOf?.(model) ?? provider.name,
  });
  await queue.work(
    config.QUEUE_CONCURRENCY,
    createQueuedRunner({
      database,
      queue,
      queued,
      users,
      apiKeys,
      requestService,
      writeRecord: (record) => writer.write(record),
      onFinished: (requestId, record) => webhookService.requestFinished(requestId, record),
      metrics,
      logger,
    }),
  );
  await queue.workDeliveries(config.QUEUE_CONCURRENCY, (job) => webhookService.attempt(job));
  const orphanSweeper = startOrphanSweeper({
    database,
    queue,
    // Well past the time a job takes to be handed out again after its worker died.
    minAgeSeconds: config.QUEUE_VISIBILITY_TIMEOUT_SECONDS * 2,
    intervalMs: Math.max(60_000, config.QUEUE_VISIBILITY_TIMEOUT_SECONDS * 1000),
    onError: throttledWarning(logger, "could not look for queued requests without a job"),
    onSwept: (ids) => logger.warn({ requestIds: ids }, "queued requests without a job were queued again"),
  });

  const readinessChecks: Record<string, () => Promise<void>> = { database: () => database.ping() };
  if (redis) {
    readinessChecks.redis = async () => {
      await redis.ping();
    };
  }

  return {
    logger,
    metrics,
    database,
    redis,
    cache,
    provider,
    users,
    apiKeys,
    sessions,
    requests,
    usage,
    overview,
    writer,
    keyVerifier,
    keyRevocation,
    limiter,
    authFailures,
    requestService,
    readinessChecks,
    queue,
    acceptance,
    batches: createBatchRepository(database.statements),
    webhooks: webhookRepository,
    webhookService,
    orphanSweeper,
    idempotencyStore: redis
      ? createRedisIdempotencyStore(redis, config.IDEMPOTENCY_TTL_SECONDS)
      : createMemoryIdempotencyStore(config.IDEMPOTENCY_TTL_SECONDS),
    async close() {
      orphanSweeper.stop();
      // Running queued requests finish and are stored first; the writer then flushes them.
      await queue.stop(queueStopTimeoutMs).catch((error: unknown) => logger.warn({ err: error }, "queue stop failed"));
      await writer.close();
      await rollupFolder.close();
      await provider.close();
      await limiter.close();
      tokenRatios.close();
      await keyRevocation.close();
      if (redis) await redis.quit().catch(() => redis.disconnect());
      await database.close();
    },
  };
}

/**
 * Commands fail at once while Redis is away (no offline queue), so a Redis outage costs cache misses, not
 * stalled requests; ioredis reconnects on its own.
 */
async function connectRedis(target: RedisTarget, logger: Logger): Promise<RedisClient> {
  const redis = createRedisClient(target, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    // A Redis that is up but answers nothing (frozen, overloaded) must not hold requests: its calls fail fast and
    // each caller falls back (cache miss, in-process limits, local coalescing).
    commandTimeout: 500,
    // Commands issued in the same tick (limits, cache, locks of concurrent requests) share one write to the socket.
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  if (!redis) throw new Error("no Redis is configured");
  const errors = changedErrorReports((error) => logger.warn({ err: error }, "redis error"));
  redis.on("error", (error: Error) => errors.failed(error));
  redis.on("ready", () => errors.recovered());
  try {
    await redis.connect();
  } catch (error) {
    logger.warn({ err: error }, "redis is not reachable at start; serving without it until it is");
  }
  return redis;
}
