import { cacheTokensOf, costUsd } from "../cost.ts";
import type { RequestRecord, StoredError } from "../db/types.ts";
import { isAppError } from "../errors.ts";
import { newId } from "../ids.ts";
import type { CacheEntry, JobInfo, Produced, Progress, Started, TokenUsage } from "./job.ts";

/** The stored record of a request, however it ended: answered from the cache, completed, failed or cancelled. */

/**
 * One literal with every field, in one order: records are built per request, and object spreads here made V8
 * allocate ~12 KB per record (a fresh dictionary-shaped object each time; the largest allocation of a hit).
 */
function recordOf(
  job: JobInfo<unknown>,
  started: Started,
  outcome: {
    provider: string;
    model: string;
    status: RequestRecord["status"];
    output: unknown;
    error: StoredError | null;
    usage: TokenUsage;
    costUsd: number | null;
    cached: boolean;
    upstreamMs: number | null;
    progress: Progress | null;
  },
): RequestRecord {
  return {
    id: job.queued?.id ?? newId("req"),
    userId: job.caller.user.id,
    apiKeyId: job.caller.key?.id ?? null,
    type: job.type,
    source: job.source,
    model: outcome.model,
    provider: outcome.provider,
    status: outcome.status,
    input: job.input,
    options: job.options,
    output: outcome.output,
    error: outcome.error,
    promptTokens: outcome.usage.prompt_tokens,
    completionTokens: outcome.usage.completion_tokens,
    totalTokens: outcome.usage.total_tokens,
    costUsd: outcome.costUsd,
    cached: outcome.cached,
    latencyMs: Math.round(performance.now() - started.ms),
    upstreamMs: outcome.upstreamMs,
    entryMs: started.entryMs,
    retries: outcome.progress?.retries ?? 0,
    attempts: outcome.progress?.attempts ?? [],
    metadata: job.metadata,
    createdAt: job.queued?.createdAt ?? started.at,
    completedAt: new Date(),
    deletedAt: null,
  };
}

export function hitRecord<T>(job: JobInfo<T>, entry: CacheEntry<T>, started: Started): RequestRecord {
  return recordOf(job as JobInfo<unknown>, started, {
    provider: entry.provider,
    model: entry.model,
    status: "completed",
    output: job.outputOf(entry.value),
    error: null,
    usage: entry.usage,
    costUsd: 0,
    cached: true,
    upstreamMs: null,
    progress: null,
  });
}

export function completedRecord<T>(
  job: JobInfo<T>,
  produced: Produced<T>,
  progress: Progress,
  started: Started,
): RequestRecord {
  return recordOf(job as JobInfo<unknown>, started, {
    provider: produced.provider,
    model: produced.model,
    status: "completed",
    output: job.outputOf(produced.value),
    error: null,
    usage: produced.usage,
    costUsd: costUsd(
      produced.model,
      produced.usage.prompt_tokens,
      produced.usage.completion_tokens,
      cacheTokensOf(produced.usage),
    ),
    cached: false,
    upstreamMs: Math.round(produced.upstreamMs),
    progress,
  });
}

/** A failed or cancelled request, with what it produced and used before it ended. */
export function endedRecord(
  job: JobInfo<unknown>,
  provider: string,
  error: unknown,
  partial: { output: unknown; usage: TokenUsage },
  progress: Progress,
  started: Started,
): RequestRecord {
  const cancelled = isAppError(error) && error.code === "client_closed";
  const stored: StoredError = isAppError(error)
    ? { code: error.code, message: error.message }
    : { code: "internal", message: "the upstream call failed unexpectedly" };
  const model = job.model;
  return recordOf(job, started, {
    provider,
    model,
    status: cancelled ? "cancelled" : "failed",
    output: partial.output,
    error: stored,
    usage: partial.usage,
    costUsd:
      partial.usage.total_tokens > 0
        ? costUsd(model, partial.usage.prompt_tokens, partial.usage.completion_tokens)
        : null,
    cached: false,
    upstreamMs: null,
    progress,
  });
}
