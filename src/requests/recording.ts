import type { RequestRecord } from "../db/types.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { JobInfo, Produced, Progress, Started, TokenUsage } from "./job.ts";
import { completedRecord, endedRecord } from "./records.ts";

/** The record step: what a request leaves behind (its committed record, and its metrics), however it ended. */
export interface Recorder {
  /** Commits the record: the answer waits on it, and a record that cannot be stored refuses the answer with 503. */
  store(record: RequestRecord): Promise<void>;
  completed<T>(job: JobInfo<T>, produced: Produced<T>, progress: Progress, started: Started): RequestRecord;
  /** The record of a request that failed or was cancelled; a failure counts in arh_upstream_errors_total. */
  ended(
    job: JobInfo<unknown>,
    error: unknown,
    partial: { output: unknown; usage: TokenUsage },
    progress: Progress,
    started: Started,
  ): RequestRecord;
  /** Stores a request that ended before any output, and returns the error to answer with. */
  failed(job: JobInfo<unknown>, caught: unknown, progress: Progress, started: Started): Promise<unknown>;
  /** Tokens and cost of a completed call, for the metrics. */
  countUsage(record: RequestRecord): void;
}

export interface RecorderDeps {
  nameOf(model: string): string;
  /** Resolves once the record is committed. */
  writeRecord(record: RequestRecord): Promise<void>;
  metrics: Metrics;
  logger: Logger;
}

const noUsage: TokenUsage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };

export function createRecorder(deps: RecorderDeps): Recorder {
  const { nameOf, metrics, logger } = deps;

  async function store(record: RequestRecord) {
    metrics.modelRequests.inc({
      type: record.type,
      model: record.model,
      provider: record.provider,
      status: record.status,
    });
    try {
      await deps.writeRecord(record);
    } catch (error) {
      logger.error({ err: error, requestRecordId: record.id }, "could not store the request record");
      throw new AppError("service_unavailable", "the request could not be recorded; try again shortly", {
        retryAfterSeconds: 1,
        cause: error,
      });
    }
  }

  function ended(
    job: JobInfo<unknown>,
    error: unknown,
    partial: { output: unknown; usage: TokenUsage },
    progress: Progress,
    started: Started,
  ): RequestRecord {
    const record = endedRecord(job, nameOf(progress.model), error, partial, progress, started);
    if (record.status === "failed" && record.error) {
      metrics.upstreamErrors.inc({ provider: record.provider, code: record.error.code });
    }
    return record;
  }

  return {
    store,
    ended,
    completed: (job, produced, progress, started) => completedRecord(job, produced, progress, started),

    async failed(job, caught, progress, started) {
      const error = asCancellation(job, caught);
      await store(ended(job, error, { output: null, usage: noUsage }, progress, started));
      return error;
    },

    countUsage(record) {
      metrics.tokens.inc({ kind: "prompt", model: record.model }, record.promptTokens);
      metrics.tokens.inc({ kind: "completion", model: record.model }, record.completionTokens);
      if (record.costUsd) metrics.costUsd.inc({ model: record.model }, record.costUsd);
    },
  };
}

/** The abort reason as the error table's `client_closed`, so it is stored and logged as a cancellation. */
export function asCancellation(job: JobInfo<unknown>, error: unknown): unknown {
  if (!job.context.signal?.aborted) return error;
  return new AppError("client_closed", "the client closed the connection before the answer", { cause: error });
}

/** How long each upstream call took, by provider and model (arh_upstream_duration_seconds). */
export function upstreamObserver(
  metrics: Metrics,
  nameOf: (model: string) => string,
): (model: string, upstreamMs: number) => void {
  return (model, upstreamMs) => metrics.upstreamDuration.observe({ provider: nameOf(model), model }, upstreamMs / 1000);
}
