import type { ApiKeyRepository } from "../db/api-keys.ts";
import type { Database } from "../db/client.ts";
import { type ClaimedRequest, type QueuedRequestRepository, unrunnableRecord } from "../db/queued-requests.ts";
import type { RequestRecord } from "../db/types.ts";
import type { UserRepository } from "../db/users.ts";
import { LimitRefusedError } from "../limits/limiter.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { RequestService } from "../requests/request-service.ts";
import { createRequestSchema } from "../requests/schemas.ts";
import type { JobQueue, RequestJob } from "./job-queue.ts";

/** The longest a request held back by its limits waits before it asks them again. */
const maxWaitMs = 60_000;

export interface RunQueuedDeps {
  database: Database;
  queue: JobQueue;
  queued: QueuedRequestRepository;
  users: UserRepository;
  apiKeys: ApiKeyRepository;
  requestService: RequestService;
  writeRecord(record: RequestRecord): Promise<void>;
  /**
   * The request is done and stored (completed or failed): its webhooks' deliveries. Safe to call again. `record`:
   * the stored record when at hand (else it is read).
   */
  onFinished(requestId: string, record?: RequestRecord): Promise<void>;
  metrics: Metrics;
  logger: Logger;
}

/**
 * What a worker does with one job: claims the request (or finds it done, cancelled, or run by another job, and
 * leaves it), runs it through the same pipeline as a direct request, keeping its id, and lets the request writer
 * replace its queued row with the record. A request its user's limits hold back is given back to the queue with a
 * job that starts when they allow it: it waits, it is never refused once accepted. A throw (the database away) makes
 * the queue try the job again, and the claim lets the same job take up its own running request.
 */
export function createQueuedRunner(deps: RunQueuedDeps) {
  const { metrics, logger } = deps;

  async function callerOf(claimed: ClaimedRequest) {
    // A key revoked or deleted since the request was accepted: its user's limits still apply, the key's are gone.
    const [user, key] = await Promise.all([
      deps.users.get(claimed.userId),
      claimed.apiKeyId ? deps.apiKeys.get(claimed.apiKeyId) : undefined,
    ]);
    if (!user || user.disabled) return undefined;
    return { user, key: key ?? null };
  }

  async function reschedule(job: RequestJob, retryAfterMs: number): Promise<void> {
    // At most a minute: a budget renews at the month's end, but an admin may raise it sooner.
    const startAfter = new Date(Date.now() + Math.min(Math.max(retryAfterMs, 100), maxWaitMs));
    // One transaction: the request is queued again exactly when a job exists to run it.
    await deps.database.transaction(async (runner) => {
      const released = await deps.queued.release(job.data.requestId, job.id, runner);
      if (released) await deps.queue.add(runner, [{ data: job.data, startAfter }]);
    });
  }

  async function runQueued(job: RequestJob): Promise<void> {
    const claimed = await deps.queued.claim(job.data.requestId, job.id);
    if (!claimed) {
      // Finished by this same job before its worker died: what followed the record may not have happened.
      if (await deps.queued.finishedBy(job.data.requestId, job.id)) await deps.onFinished(job.data.requestId);
      return;
    }
    await run(job, claimed);
  }

  async function run(job: RequestJob, claimed: ClaimedRequest): Promise<void> {
    const queueWaitMs = Date.now() - claimed.createdAt.getTime();
    metrics.queueWait.observe(queueWaitMs / 1000);

    const caller = await callerOf(claimed);
    if (!caller) {
      await finished(claimed, unrunnableRecord(claimed, "user_disabled", "the user was disabled before it ran"));
      return;
    }
    const parsed = createRequestSchema.safeParse({
      type: claimed.type,
      input: claimed.input,
      options: claimed.options,
      model: claimed.model,
      metadata: claimed.metadata,
      cache: job.data.cacheMode !== "bypass",
    });
    if (!parsed.success) {
      // Stored by a version that accepted what this one does not.
      await finished(claimed, unrunnableRecord(claimed, "invalid_request", parsed.error.message));
      return;
    }
    let record: RequestRecord | undefined;
    try {
      ({ record } = await deps.requestService.runQueued(caller, parsed.data, claimed, {
        cacheMode: job.data.cacheMode,
      }));
    } catch (error) {
      if (error instanceof LimitRefusedError) {
        const { refusal } = error;
        if (refusal.limit === "tpm" && refusal.tooLarge) {
          const message = `needs ${refusal.tokens} tokens, more than the ${refusal.allowed} tokens per minute allowed`;
          await finished(claimed, unrunnableRecord(claimed, "tpm_limit_too_small", message));
          return;
        }
        await reschedule(job, refusal.retryAfterMs);
        return;
      }
      // A failed request is recorded by the pipeline and its job is done; anything else is tried again.
      if (!(await deps.queued.isFinished(claimed.id))) {
        logger.warn({ err: error, requestId: claimed.id }, "a queued request could not be run; trying again");
        throw error;
      }
    }
    // The line a direct request's HTTP log gives, for one that ran in the background.
    logger.info(
      {
        requestRecordId: claimed.id,
        userId: claimed.userId,
        type: claimed.type,
        model: record?.model ?? claimed.model,
        status: record?.status ?? "failed",
        queueWaitMs,
        latencyMs: record?.latencyMs,
      },
      "queued request ran",
    );
    if (claimed.hasWebhooks) await deps.onFinished(claimed.id, record);
  }

  /** Stores the record of a request that could not run, and tells its webhooks. */
  async function finished(claimed: ClaimedRequest, record: RequestRecord): Promise<void> {
    await deps.writeRecord(record);
    if (claimed.hasWebhooks) await deps.onFinished(claimed.id, record);
  }

  return runQueued;
}
