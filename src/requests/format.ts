import type { RequestRecord } from "../db/types.ts";

/** The request object of the native API. `withInput` adds what GET /requests/{id} shows besides. */
export function formatRequest(record: RequestRecord, withInput = false) {
  const formatted = {
    id: record.id,
    object: "request" as const,
    type: record.type,
    status: record.status,
    provider: record.provider,
    model: record.model,
    output: record.output ?? null,
    error: record.error,
    usage: {
      prompt_tokens: record.promptTokens,
      completion_tokens: record.completionTokens,
      total_tokens: record.totalTokens,
    },
    cost_usd: record.costUsd,
    cached: record.cached,
    latency_ms: record.latencyMs,
    created_at: record.createdAt.toISOString(),
    completed_at: record.completedAt?.toISOString() ?? null,
    metadata: record.metadata,
  };
  return withInput
    ? {
        ...formatted,
        input: record.input ?? null,
        options: record.options,
        source: record.source,
        upstream_ms: record.upstreamMs,
        // Tenths of a microsecond are noise: three decimals.
        entry_ms: record.entryMs === null ? null : Math.round(record.entryMs * 1000) / 1000,
        retries: record.retries,
        attempts: record.attempts,
      }
    : formatted;
}
