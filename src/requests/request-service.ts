import { AppError, isAppError } from "../errors.ts";
import type { RequestRecord, StoredError, UserRecord } from "../db/types.ts";
import type { ResponseCache } from "../cache/response-cache.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { Logger } from "../observability/logger.ts";
import type { CallOptions, ChatCompletion, Provider, Usage } from "../providers/provider.ts";
import { newId } from "../ids.ts";
import { cacheKey } from "./cache-key.ts";
import { costUsd } from "./cost.ts";
import type { CreateRequest } from "./schemas.ts";
import { taskTypes } from "./task-types.ts";

/** `use`: read and fill; `refresh` (Cache-Control: no-cache): skip the read, fill; `bypass`: neither. */
export type CacheMode = "use" | "refresh" | "bypass";
export type CacheResult = "hit" | "miss" | "bypass";

export interface Caller {
  user: UserRecord;
  apiKeyId: string | null;
}

export interface CreateContext {
  cacheMode: CacheMode;
  signal?: AbortSignal;
}

export interface Outcome {
  record: RequestRecord;
  cache: CacheResult;
}

export interface RequestServiceDeps {
  provider: Provider;
  cache: ResponseCache;
  /** Resolves once the record is committed. */
  writeRecord(record: RequestRecord): Promise<void>;
  metrics: Metrics;
  logger: Logger;
  settings: { cacheTtlSeconds: number; defaultChatModel: string; defaultEmbedModel: string };
}

/** What a cache entry holds for the native API: enough to answer again without the upstream. */
interface CachedAnswer {
  provider: string;
  model: string;
  output: unknown;
  usage: TokenUsage;
}

interface TokenUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

interface Answer extends CachedAnswer {
  upstreamMs: number;
}

export type RequestService = ReturnType<typeof createRequestService>;

/**
 * The pipeline of a native request, after the HTTP layer has validated and authenticated it:
 * cache lookup → provider call (with the type's own prompt and output check) → store → answer.
 */
export function createRequestService(deps: RequestServiceDeps) {
  const { provider, cache, metrics, settings } = deps;

  const modelFor = (request: CreateRequest) =>
    request.model ?? (request.type === "embed" ? settings.defaultEmbedModel : settings.defaultChatModel);

  async function create(caller: Caller, request: CreateRequest, context: CreateContext): Promise<Outcome> {
    const startedAt = new Date();
    const started = performance.now();
    const model = modelFor(request);
    const useCache = request.cache && context.cacheMode !== "bypass";
    const key = useCache
      ? cacheKey({
          scope: caller.user.id,
          api: "native",
          type: request.type,
          model,
          input: request.input,
          options: request.options,
        })
      : undefined;

    const base = {
      id: newId("req"),
      userId: caller.user.id,
      apiKeyId: caller.apiKeyId,
      type: request.type,
      source: "native" as const,
      model,
      input: request.input,
      options: request.options,
      metadata: request.metadata ?? {},
      createdAt: startedAt,
      deletedAt: null,
    };

    if (key && context.cacheMode === "use") {
      const hit = parseCached(await cache.get(key));
      if (hit) {
        metrics.cacheLookups.inc({ result: "hit" });
        const record: RequestRecord = {
          ...base,
          provider: hit.provider,
          model: hit.model,
          status: "completed",
          output: hit.output,
          error: null,
          ...tokens(hit.usage),
          costUsd: 0,
          cached: true,
          latencyMs: elapsed(started),
          upstreamMs: null,
          retries: 0,
          completedAt: new Date(),
        };
        await store(record);
        return { record, cache: "hit" };
      }
    }
    metrics.cacheLookups.inc({ result: key ? "miss" : "bypass" });

    // Counted through the provider's hook, so retries of a call that fails in the end are recorded too.
    const progress = { retries: 0 };
    const callOptions: CallOptions = {
      signal: context.signal,
      onRetry: () => {
        progress.retries++;
        metrics.upstreamRetries.inc({ provider: provider.name });
      },
    };
    let answer: Answer;
    try {
      answer = await callProvider(request, model, callOptions);
    } catch (caught) {
      const error = context.signal?.aborted
        ? new AppError("client_closed", "the client closed the connection before the answer", { cause: caught })
        : caught;
      const stored: StoredError = isAppError(error)
        ? { code: error.code, message: error.message }
        : { code: "internal", message: "the upstream call failed unexpectedly" };
      metrics.upstreamErrors.inc({ provider: provider.name, code: stored.code });
      await store({
        ...base,
        provider: provider.name,
        status: context.signal?.aborted ? "cancelled" : "failed",
        output: null,
        error: stored,
        promptTokens: 0,
        completionTokens: 0,
        totalTokens: 0,
        costUsd: null,
        cached: false,
        latencyMs: elapsed(started),
        upstreamMs: null,
        retries: progress.retries,
        completedAt: new Date(),
      });
      throw error;
    }

    const cost = costUsd(answer.model, answer.usage.prompt_tokens, answer.usage.completion_tokens);
    const record: RequestRecord = {
      ...base,
      provider: answer.provider,
      model: answer.model,
      status: "completed",
      output: answer.output,
      error: null,
      ...tokens(answer.usage),
      costUsd: cost,
      cached: false,
      latencyMs: elapsed(started),
      upstreamMs: Math.round(answer.upstreamMs),
      retries: progress.retries,
      completedAt: new Date(),
    };
    await store(record);
    countUsage(record);
    if (key) {
      const cached: CachedAnswer = {
        provider: answer.provider,
        model: answer.model,
        output: answer.output,
        usage: answer.usage,
      };
      // The answer does not wait for the cache fill; a failed fill only costs a later miss.
      void cache.set(key, JSON.stringify(cached), settings.cacheTtlSeconds);
    }
    return { record, cache: key ? "miss" : "bypass" };
  }

  async function callProvider(request: CreateRequest, model: string, callOptions: CallOptions): Promise<Answer> {
    if (request.type === "embed") {
      const call = await provider.embeddings(taskTypes.embed.build(request, model), callOptions);
      const embedding = call.value.data[0]?.embedding;
      if (!Array.isArray(embedding)) throw new AppError("upstream_error", "the upstream answered with no embedding");
      observeUpstream(model, call.upstreamMs);
      const { prompt_tokens, total_tokens } = call.value.usage;
      return {
        provider: provider.name,
        model,
        output: { embedding, dimensions: embedding.length },
        usage: { prompt_tokens, completion_tokens: 0, total_tokens },
        upstreamMs: call.upstreamMs,
      };
    }

    // The table is keyed by type; TypeScript cannot follow the correlation, so the narrowing is restated here.
    const task = taskTypes[request.type] as (typeof taskTypes)["chat"];
    const typed = request as Extract<CreateRequest, { type: "chat" }>;
    const body = task.build(typed, model);
    const attempts = task.retryInvalidOutput ? 2 : 1;
    let usage: TokenUsage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    let upstreamMs = 0;
    let problem = "";
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) callOptions.onRetry?.({ attempt, reason: "invalid output", delayMs: 0 });
      const call = await provider.chatCompletion(body, callOptions);
      observeUpstream(model, call.upstreamMs);
      upstreamMs += call.upstreamMs;
      // Tokens of a rejected attempt were still spent, so they are billed too.
      usage = addUsage(usage, call.value);
      const parsed = task.parse(call.value, typed);
      if (parsed.ok) {
        return { provider: provider.name, model, output: parsed.output, usage, upstreamMs };
      }
      problem = parsed.problem;
    }
    throw new AppError("upstream_invalid_output", `${problem} (after ${attempts} attempts)`);
  }

  function observeUpstream(model: string, upstreamMs: number) {
    metrics.upstreamDuration.observe({ provider: provider.name, model }, upstreamMs / 1000);
  }

  function countUsage(record: RequestRecord) {
    metrics.tokens.inc({ kind: "prompt", model: record.model }, record.promptTokens);
    metrics.tokens.inc({ kind: "completion", model: record.model }, record.completionTokens);
    if (record.costUsd) metrics.costUsd.inc({ model: record.model }, record.costUsd);
  }

  /** A 201 means the record is committed; a record that cannot be stored refuses the answer. */
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
      deps.logger.error({ err: error, requestId: record.id }, "could not store the request record");
      throw new AppError("service_unavailable", "the request could not be recorded; try again shortly", {
        retryAfterSeconds: 1,
        cause: error,
      });
    }
  }

  return { create, modelFor };
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

function tokens(usage: TokenUsage) {
  return {
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens,
    totalTokens: usage.total_tokens,
  };
}

function addUsage(total: TokenUsage, completion: ChatCompletion): TokenUsage {
  const usage: Usage | undefined = completion.usage;
  if (!usage) return total;
  return {
    prompt_tokens: total.prompt_tokens + usage.prompt_tokens,
    completion_tokens: total.completion_tokens + usage.completion_tokens,
    total_tokens: total.total_tokens + usage.total_tokens,
  };
}

function parseCached(text: string | undefined): CachedAnswer | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as CachedAnswer;
  } catch {
    return undefined;
  }
}
