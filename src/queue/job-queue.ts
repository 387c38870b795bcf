import PgBoss from "pg-boss";
import type { Database, StatementRunner } from "../db/client.ts";

/**
 * The durable queue of requests to run in the background: pg-boss, in the service's own PostgreSQL (or PGlite), in
 * its own schema `pgboss`. A job holds only a request's id (the request itself is its `queued` row), so a job and
 * the row it runs are written in one transaction. Every instance is a worker. pg-boss hands a job to one worker at a
 * time (SKIP LOCKED); a job whose worker died (active past `visibilityTimeoutSeconds`) is handed out again.
 */

export const requestQueueName = "requests";
/** Webhook deliveries (src/webhooks/): a job per delivery, retried with backoff by the queue. */
export const deliveryQueueName = "webhook-deliveries";
/** Retries after a delivery's first attempt: with doubling delays, about a day at a 15 s first delay. */
export const deliveryRetries = 12;

/** What a job says about its request. */
export interface RequestJobData {
  requestId: string;
  /** Cache-Control of the accepting call: `use`, `refresh` or `bypass`. */
  cacheMode: "use" | "refresh" | "bypass";
  /** Its place among its user's queued requests (fair ordering); a rescheduled job keeps it. */
  priority: number;
}

export interface NewRequestJob {
  data: RequestJobData;
  /** Not before this time (a rescheduled job waiting on its user's limits). */
  startAfter?: Date;
}

export interface DeliveryJob {
  id: string;
  deliveryId: string;
  /** Attempts made before this one; `retryLimit` when this is the last. */
  retryCount: number;
  retryLimit: number;
}

export interface JobQueueOptions {
  database: Database;
  visibilityTimeoutSeconds: number;
  /** The first retry's delay of a failed delivery; each next one doubles (with jitter). */
  deliveryRetryDelaySeconds: number;
  /** How long one delivery job may run before it is presumed orphaned: above a delivery's deadline. */
  deliveryVisibilitySeconds: number;
  pollIntervalMs: number;
  onError(error: Error): void;
}

export interface RequestJob {
  /** The job's id: a job taken up again after its worker died keeps it. */
  id: string;
  data: RequestJobData;
}

export interface JobQueue {
  /** Adds jobs inside the caller's transaction (`runner`), so they exist exactly when what they run was stored. */
  add(runner: StatementRunner, jobs: readonly NewRequestJob[]): Promise<void>;
  /** Starts `concurrency` workers in this process, each running one job at a time with `handle`. */
  work(concurrency: number, handle: (job: RequestJob) => Promise<void>): Promise<void>;
  /** Adds a delivery job per id inside the caller's transaction (the outbox rows they send). */
  addDeliveries(runner: StatementRunner, deliveryIds: readonly string[]): Promise<void>;
  /** Starts `concurrency` delivery workers; `handle` throws to have the delivery retried later. */
  workDeliveries(concurrency: number, handle: (job: DeliveryJob) => Promise<void>): Promise<void>;
  /** Wakes this process's idle workers now (after jobs were added here) instead of at their next poll. */
  wake(): void;
  /** Jobs waiting to run (created or waiting to retry), every instance's. */
  depth(): Promise<number>;
  /** Stops taking jobs, waits up to `timeoutMs` for the running ones, then stops. */
  stop(timeoutMs: number): Promise<void>;
}

export async function startJobQueue(options: JobQueueOptions): Promise<JobQueue> {
  const { database } = options;
  const visibility = options.visibilityTimeoutSeconds;
  const boss = new PgBoss({
    db: { executeSql: (text, values) => database.executeSql(text, values) },
    schema: "pgboss",
    // Jobs expired (worker presumed dead) are found by maintenance: often enough that one is taken up again soon
    // after its visibility timeout.
    maintenanceIntervalSeconds: Math.max(1, Math.min(60, Math.floor(visibility / 3))),
    monitorStateIntervalSeconds: 60,
    archiveCompletedAfterSeconds: 3600,
    deleteAfterDays: 7,
  });
  boss.on("error", options.onError);
  await boss.start();
  // Set on every job as well as on its queue: a queue keeps the policy it was created with, and the jobs follow this
  // instance's configuration.
  const requestPolicy = {
    expireInSeconds: visibility,
    // A handler throws only when the service could not do its part (the database away): try again, backing off.
    // A request's own failure (the model's) is recorded as failed and completes its job.
    retryLimit: 50,
    retryDelay: 2,
    retryBackoff: true,
  };
  const deliveryPolicy = {
    expireInSeconds: options.deliveryVisibilitySeconds,
    retryLimit: deliveryRetries,
    retryDelay: options.deliveryRetryDelaySeconds,
    retryBackoff: true,
  };
  await boss.createQueue(requestQueueName, { name: requestQueueName, ...requestPolicy });
  await boss.createQueue(deliveryQueueName, { name: deliveryQueueName, ...deliveryPolicy });
  const workers: string[] = [];

  /** Inserts jobs with the statements of the caller's transaction. */
  async function insertIn(runner: StatementRunner, jobs: PgBoss.JobInsert[]): Promise<void> {
    if (jobs.length === 0) return;
    await boss.insert(jobs, { db: { executeSql: (text, values) => runner.query({ text, values }) } });
  }

  /** `concurrency` workers of a queue, each running one job at a time. */
  async function startWorkers<T>(
    name: string,
    concurrency: number,
    handle: (job: PgBoss.JobWithMetadata<T>) => Promise<void>,
  ): Promise<void> {
    for (let i = 0; i < concurrency; i++) {
      let self: string | undefined;
      self = await boss.work<T>(
        name,
        { batchSize: 1, pollingIntervalSeconds: options.pollIntervalMs / 1000, includeMetadata: true },
        async ([job]) => {
          if (!job) return;
          await handle(job);
          // A worker that just ran a job looks for the next at once; only an idle one waits for its next poll.
          if (self) boss.notifyWorker(self);
        },
      );
      workers.push(self);
    }
  }

  return {
    add: (runner, jobs) =>
      insertIn(
        runner,
        jobs.map((job) => ({
          name: requestQueueName,
          data: job.data,
          priority: job.data.priority,
          ...(job.startAfter && { startAfter: job.startAfter }),
          ...requestPolicy,
        })),
      ),

    work: (concurrency, handle) =>
      startWorkers<RequestJobData>(requestQueueName, concurrency, (job) => handle({ id: job.id, data: job.data })),

    addDeliveries: (runner, deliveryIds) =>
      insertIn(
        runner,
        deliveryIds.map((deliveryId) => ({ name: deliveryQueueName, data: { deliveryId }, ...deliveryPolicy })),
      ),

    workDeliveries: (concurrency, handle) =>
      startWorkers<{ deliveryId: string }>(deliveryQueueName, concurrency, (job) =>
        handle({ id: job.id, deliveryId: job.data.deliveryId, retryCount: job.retryCount, retryLimit: job.retryLimit }),
      ),

    wake() {
      for (const worker of workers) boss.notifyWorker(worker);
    },

    depth: () => boss.getQueueSize(requestQueueName),

    async stop(timeoutMs) {
      await boss.stop({ graceful: true, wait: true, close: false, timeout: Math.max(1000, timeoutMs) });
    },
  };
}
