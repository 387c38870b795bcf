import type { RequestRecord } from "../../src/db/types.ts";
import { newId } from "../../src/ids.ts";

/** A completed chat request record of `userId`, as the request service stores one; `overrides` change any field. */
export function requestRecord(userId: string, overrides: Partial<RequestRecord> = {}): RequestRecord {
  const createdAt = overrides.createdAt ?? new Date();
  return {
    id: newId("req"),
    userId,
    apiKeyId: null,
    type: "chat",
    source: "native",
    model: "gpt-4o-mini",
    provider: "openai",
    status: "completed",
    input: "hello",
    options: null,
    output: "hi",
    error: null,
    promptTokens: 10,
    completionTokens: 5,
    totalTokens: 15,
    costUsd: 0.000123,
    cached: false,
    latencyMs: 10,
    upstreamMs: 8,
    entryMs: 0.4,
    retries: 0,
    attempts: [],
    metadata: {},
    completedAt: createdAt,
    deletedAt: null,
    ...overrides,
    createdAt,
  };
}
