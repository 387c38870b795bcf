import type { ResponseCache } from "../cache/response-cache.ts";
import type { RequestRecord, RequestType } from "../db/types.ts";
import { AppError, isAppError } from "../errors.ts";
import { newId } from "../ids.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import type {
  CallOptions,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  EmbeddingRequest,
  EmbeddingResponse,
  Provider,
  Usage,
} from "../providers/provider.ts";
import { countPromptTokens, countTextTokens } from "../tokens.ts";
import { cacheKey } from "./cache-key.ts";
import {
  type CacheEntry,
  type CacheResult,
  type Caller,
  type CallContext,
  type Job,
  type JobInfo,
  newProgress,
  type Produced,
  type Progress,
  type TokenUsage,
} from "./job.ts";
import { completedRecord, endedRecord, hitRecord } from "./records.ts";
import { createReservationStep, isMetered } from "./reservation.ts";
import { completionToChunks, createChunkGatherer } from "./chat-stream.ts";
import { costUsd } from "../cost.ts";
import { createSingleFlight, type SingleFlight } from "./single-flight.ts";
import { defaultMaxOutputTokens } from "../limits/estimate.ts";
import {
  type LimitState,
  LimitRefusedError,
  type Limiter,
  limitSubjectOf,
  type Reservation,
} from "../limits/limiter.ts";
import type { TokenRatios } from "../limits/token-ratios.ts";
import type { CreateRequest, CreateRequestOf } from "./schemas.ts";
import { type ChatTask, taskTypes } from "./task-types.ts";

/** What a call that never happened, or failed before answering, used. */
const nothing = { tokens: 0, costUsd: 0 };
const ignore = () => {};

const isLimitRefusal = (error: unknown) => error instanceof LimitRefusedError;

/** Failures another model may not have. */
const fallbackCodes = new Set(["upstream_error", "upstream_timeout", "upstream_invalid_output"]);

export interface Outcome<T> {
  value: T;
  record: RequestRecord;
  cache: CacheResult;
  /** The caller's rate-limit windows after this request, for the x-ratelimit-* headers. */
  rateLimit: LimitState;
}

/** A stream whose first chunk has arrived (so failures before it are ordinary errors), or a cached replay. */
export interface ChatStream {
  cache: CacheResult;
  rateLimit: LimitState;
  /** Every chunk, the usage chunk last; returns the stored record once it is committed. */
  chunks: AsyncGenerator<ChatCompletionChunk, RequestRecord>;
}

export interface RequestServiceDeps {
  provider: Provider;
  cache: ResponseCache;
  /** Resolves once the record is committed. */
  writeRecord(record: RequestRecord): Promise<void>;
  metrics: Metrics;
  logger: Logger;
  settings: {
    cacheTtlSeconds: number;
    defaultChatModel: string;
    defaultEmbedModel: string;
    /** Models to try in order when a model (or any model of a request type) fails for good. */
    fallbacks?: Record<string, string[]>;
  };
  /** Shares one upstream call among identical requests in flight; in-process only when not given. */
  singleFlight?: SingleFlight;
  limiter: Limiter;
  /** Each model's learned tokens per byte, for reservations that hold whatever the upstream's tokenizer. */
  tokenRatios: TokenRatios;
}

export type { CacheMode, CacheResult, Caller, CallContext } from "./job.ts";

export type RequestService = ReturnType<typeof createRequestService>;

/**
 * The pipeline a request walks once it is validated and authenticated:
 * cache lookup → provider call → output check → store (committed) → cache fill → answer.
 * The native API and the OpenAI-compatible API are two ways in; both end up as a Job.
 */
export function createRequestService(deps: RequestServiceDeps) {
  const { provider, cache, metrics, settings, limiter } = deps;
  const singleFlight = deps.singleFlight ?? createSingleFlight({ lockTtlMs: 30_000 });
  const reservations = createReservationStep({
    limiter,
    tokenRatios: deps.tokenRatios,
    fallbacks: settings.fallbacks,
  });
  const { giveBack, learn, modelsOf } = reservations;
  const reserveFor = reservations.reserve;

  // ---- the native API ----------------------------------------------------------------------------------------

  const modelFor = (request: CreateRequest) =>
    request.model ?? (request.type === "embed" ? settings.defaultEmbedModel : settings.defaultChatModel);

  function nativeJob(caller: Caller, request: CreateRequest, context: CallContext) {
    const model = modelFor(request);
    // Built once for the job's own model: the reservation's estimate and the call measure and send the same body.
    let own: ChatCompletionRequest | undefined;
    const chatBody = (chat: NativeChatRequest, callModel: string): ChatCompletionRequest => {
      if (callModel !== model) return nativeChatBody(caller, chat, callModel);
      own ??= nativeChatBody(caller, chat, model);
      return own;
    };
    const job: Job<unknown> = {
      estimate: () =>
        request.type === "embed"
          ? { body: { input: request.input }, maxOutputTokens: 0 }
          : {
              body: chatBody(request, model),
              maxOutputTokens: request.options.max_tokens ?? defaultMaxOutputTokens,
            },
      caller,
      context,
      type: request.type,
      source: "native",
      model,
      input: request.input,
      options: request.options,
      metadata: request.metadata ?? {},
      cacheable: request.cache,
      outputOf: (output) => output,
      call: (callModel, callOptions) => callNative(request, callModel, callOptions, chatBody),
    };
    return { job, chatBody };
  }

  /**
   * The chat body a native request sends. A metered caller's request that names no max_tokens is capped at the
   * default, so that what its reservation holds is a bound on what the call can spend.
   */
  function nativeChatBody(caller: Caller, request: NativeChatRequest, model: string): ChatCompletionRequest {
    const body = chatTask(request.type).build(request, model);
    return isMetered(caller) && body.max_tokens === undefined ? { ...body, max_tokens: defaultMaxOutputTokens } : body;
  }

  /** POST /requests: the answer is the request object. */
  async function create(caller: Caller, request: CreateRequest, context: CallContext): Promise<Outcome<unknown>> {
    return run(nativeJob(caller, request, context).job);
  }

  async function callNative(
    request: CreateRequest,
    model: string,
    callOptions: CallOptions,
    chatBody: (chat: NativeChatRequest, model: string) => ChatCompletionRequest,
  ): Promise<Produced<unknown>> {
    if (request.type === "embed") {
      const call = await provider.embeddings(taskTypes.embed.build(request, model), callOptions);
      const embedding = call.value.data[0]?.embedding;
      if (!Array.isArray(embedding)) throw new AppError("upstream_error", "the upstream answered with no embedding");
      observeUpstream(model, call.upstreamMs);
      const { prompt_tokens, total_tokens } = call.value.usage;
      return {
        value: { embedding, dimensions: embedding.length },
        model,
        usage: { prompt_tokens, completion_tokens: 0, total_tokens },
        upstreamMs: call.upstreamMs,
        reportedPromptTokens: prompt_tokens,
      };
    }

    const task = chatTask(request.type);
    const body = chatBody(request, model);
    const attempts = task.retryInvalidOutput ? 2 : 1;
    let usage: TokenUsage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    let upstreamMs = 0;
    let problem = "";
    let reportedPromptTokens: number | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) callOptions.onRetry?.({ attempt, reason: "invalid output", delayMs: 0 });
      const call = await provider.chatCompletion(body, callOptions);
      observeUpstream(model, call.upstreamMs);
      upstreamMs += call.upstreamMs;
      // Tokens of a rejected attempt were still spent, so they are billed too.
      usage = addUsage(usage, call.value.usage);
      reportedPromptTokens = call.value.usage?.prompt_tokens;
      const parsed = task.parse(call.value, request);
      if (parsed.ok) return { value: parsed.output, model, usage, upstreamMs, reportedPromptTokens };
      problem = parsed.problem;
    }
    throw new AppError("upstream_invalid_output", `${problem} (after ${attempts} attempts)`);
  }

  /**
   * POST /requests with `"stream": true` (chat, summarize, translate): the upstream's chunks as they come; the
   * stored output is the whole text.
   */
  async function createStream(
    caller: Caller,
    request: CreateRequestOf<"chat" | "summarize" | "translate">,
    context: CallContext,
  ): Promise<ChatStream> {
    const {
      job: { call: _call, ...job },
      chatBody,
    } = nativeJob(caller, request, context);
    const body = chatBody(request, job.model);
    // Cached as the text, like a plain native request, so either answers the other's repeats.
    return stream(job, body, textCodec);
  }

  // ---- the OpenAI-compatible API -----------------------------------------------------------------------------

  /** Fields that change nothing in the answer: left out of the cache key and of the stored options. */
  const transportFields = new Set([
    "model",
    "messages",
    "input",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
  ]);

  function openAIOptions(body: Record<string, unknown>): Record<string, unknown> {
    const options: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(body)) if (!transportFields.has(key)) options[key] = value;
    return options;
  }

  /**
   * The body a /v1 chat call sends: as the client gave it, but for a metered caller that names neither
   * max_completion_tokens nor max_tokens, capped at the default (OpenAI's max_completion_tokens, which every one of
   * its models takes), so that the reservation bounds what the call can spend.
   */
  function cappedChatBody(caller: Caller, body: ChatCompletionRequest): ChatCompletionRequest {
    if (!isMetered(caller) || typeof body.max_completion_tokens === "number" || typeof body.max_tokens === "number") {
      return body;
    }
    return { ...body, max_completion_tokens: defaultMaxOutputTokens };
  }

  /** `body` as it goes upstream (cappedChatBody); `asked` as the client sent it, for the cache key and the record. */
  function chatJob(
    caller: Caller,
    body: ChatCompletionRequest,
    context: CallContext,
    asked: ChatCompletionRequest = body,
  ): Job<ChatCompletion> {
    const maxOutput = body.max_completion_tokens ?? body.max_tokens ?? defaultMaxOutputTokens;
    const choices = typeof body.n === "number" && body.n > 1 ? body.n : 1;
    return {
      estimate: () => ({ body, maxOutputTokens: maxOutput * choices }),
      caller,
      context,
      type: "chat",
      source: "openai",
      model: body.model,
      input: asked.messages,
      options: openAIOptions(asked),
      metadata: {},
      cacheable: true,
      outputOf: completionOutput,
      call: async (model, callOptions) => {
        const call = await provider.chatCompletion(model === body.model ? body : { ...body, model }, callOptions);
        observeUpstream(model, call.upstreamMs);
        const usage =
          call.value.usage ?? countedUsage(body, call.value.choices.map((c) => c.message.content ?? "").join(""));
        return {
          value: call.value,
          model: call.value.model || model,
          usage,
          upstreamMs: call.upstreamMs,
          reportedPromptTokens: call.value.usage?.prompt_tokens,
        };
      },
    };
  }

  /** POST /v1/chat/completions: the answer is OpenAI's completion object. */
  function chatCompletion(caller: Caller, body: ChatCompletionRequest, context: CallContext) {
    return run(chatJob(caller, cappedChatBody(caller, body), context, body));
  }

  /** POST /v1/chat/completions with `stream: true`. */
  function chatCompletionStream(caller: Caller, body: ChatCompletionRequest, context: CallContext) {
    const sent = cappedChatBody(caller, body);
    return stream(chatJob(caller, sent, context, body), sent, completionCodec);
  }

  /** POST /v1/embeddings. */
  function embeddings(caller: Caller, body: EmbeddingRequest, context: CallContext) {
    return run<EmbeddingResponse>({
      estimate: () => ({ body: { input: body.input }, maxOutputTokens: 0 }),
      caller,
      context,
      type: "embed",
      source: "openai",
      model: body.model,
      input: body.input,
      options: openAIOptions(body),
      metadata: {},
      cacheable: true,
      outputOf: embeddingOutput,
      call: async (model, callOptions) => {
        const call = await provider.embeddings(model === body.model ? body : { ...body, model }, callOptions);
        observeUpstream(model, call.upstreamMs);
        const { prompt_tokens, total_tokens } = call.value.usage;
        return {
          value: call.value,
          model,
          usage: { prompt_tokens, completion_tokens: 0, total_tokens },
          upstreamMs: call.upstreamMs,
          reportedPromptTokens: prompt_tokens,
        };
      },
    });
  }

  // ---- the pipeline ------------------------------------------------------------------------------------------

  function keyOf(job: JobInfo<unknown>): string | undefined {
    if (!job.cacheable || job.context.cacheMode === "bypass" || settings.cacheTtlSeconds <= 0) return undefined;
    return cacheKey({
      scope: job.caller.user.id,
      api: job.source,
      type: job.type,
      model: job.model,
      input: job.input,
      options: job.options,
    });
  }

  async function lookup<T>(job: JobInfo<T>, key: string | undefined): Promise<CacheEntry<T> | undefined> {
    if (!key || job.context.cacheMode !== "use") return undefined;
    const text = await cache.get(key);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as CacheEntry<T>;
    } catch {
      return undefined;
    }
  }

  /** A failed fill only costs a later miss (the cache reports and swallows its errors). */
  async function fill<T>(key: string | undefined, entry: CacheEntry<T>): Promise<void> {
    if (key) await cache.set(key, JSON.stringify(entry), settings.cacheTtlSeconds);
  }

  function completed<T>(job: JobInfo<T>, produced: Produced<T>, progress: Progress, startedAt: Date, started: number) {
    return completedRecord(job, provider.name, produced, progress, startedAt, started);
  }

  /** The record of a request that failed or was cancelled; a failure counts in arh_upstream_errors_total. */
  function ended(
    job: JobInfo<unknown>,
    error: unknown,
    partial: { output: unknown; usage: TokenUsage },
    progress: Progress,
    startedAt: Date,
    started: number,
  ): RequestRecord {
    const record = endedRecord(job, provider.name, error, partial, progress, startedAt, started);
    if (record.status === "failed" && record.error) {
      metrics.upstreamErrors.inc({ provider: provider.name, code: record.error.code });
    }
    return record;
  }

  /** The provider's call options for one job: its abort signal, and retries recorded into `progress`. */
  function callOptionsFor(job: JobInfo<unknown>, progress: Progress): CallOptions {
    return {
      signal: job.context.signal,
      onRetry: (retry) => {
        progress.retries++;
        progress.attempts.push({ model: progress.model, outcome: retry.reason });
        metrics.upstreamRetries.inc({ provider: provider.name });
      },
    };
  }

  /** The abort reason as the error table's `client_closed`, so it is stored and logged as a cancellation. */
  function asCancellation(job: JobInfo<unknown>, error: unknown): unknown {
    if (!job.context.signal?.aborted) return error;
    return new AppError("client_closed", "the client closed the connection before the answer", { cause: error });
  }

  async function run<T>(job: Job<T>): Promise<Outcome<T>> {
    const startedAt = new Date();
    const started = performance.now();
    const subject = limitSubjectOf(job.caller.user, job.caller.key);
    const key = keyOf(job);
    // Every request counts against rpm, a cache hit too; only calls that reach the upstream spend tokens.
    // The two Redis calls go out together; a refused request's lookup is simply dropped.
    const [admission, hit] = await Promise.all([limiter.admitRequest(subject), lookup(job, key)]);
    if (!admission.ok) throw new LimitRefusedError(admission.refusal);
    let rateLimit = admission.state;
    if (hit) {
      metrics.cacheLookups.inc({ result: "hit" });
      const record = hitRecord(job, hit, startedAt, started);
      await store(record);
      return { value: hit.value, record, cache: "hit", rateLimit };
    }
    metrics.cacheLookups.inc({ result: key ? "miss" : "bypass" });

    const progress = newProgress(job.model);
    const callOptions = callOptionsFor(job, progress);
    const coalesced = key !== undefined && job.context.cacheMode === "use";
    // The reservation goes out now, in the same Redis round trip as the coalescing lock; a request that ends up
    // sharing another's call (or never calls) gives it back below. One joining an identical call already running
    // in this process reserves nothing: it would only hold tokens other requests of its user might need.
    let reserving = coalesced && singleFlight.running(key) ? undefined : reserveFor(job, subject);
    // Marked handled now: a refusal may arrive while the lock is still being taken, before anyone awaits it.
    reserving?.catch(ignore);
    let reservationUsed = false;
    const call = async () => {
      reservationUsed = true;
      // Reserved only now when this request joined a call whose client left, and has to make the call itself.
      reserving ??= reserveFor(job, subject);
      const reservation = await reserving;
      rateLimit = { ...rateLimit, ...reservation.state };
      const own = await meteredCall(job, reservation, progress, callOptions);
      // Not awaited: the fill is written to Redis before the coalescing lock's release and with the settlement,
      // in one round trip that runs alongside the record's commit. A failed fill only costs a later miss.
      void fill(key, entryOf(own));
      return own;
    };
    let produced: Produced<T>;
    let shared = false;
    try {
      if (coalesced) {
        // Identical requests arriving together share this call; the others are answered as cache hits.
        const flight = await singleFlight.run(key, call, async () => {
          const entry = await lookup(job, key);
          return (
            entry && {
              value: entry.value,
              model: entry.model,
              usage: entry.usage,
              upstreamMs: 0,
              reportedPromptTokens: undefined,
            }
          );
        });
        produced = flight.value;
        shared = flight.shared;
      } else {
        produced = await call();
      }
    } catch (caught) {
      // A request the limits refused did not run: nothing to store.
      if (isLimitRefusal(caught)) throw caught;
      const error = asCancellation(job, caught);
      const empty = { output: null, usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 } };
      await store(ended(job, error, empty, progress, startedAt, started));
      throw error;
    } finally {
      if (!reservationUsed && reserving) giveBack(reserving);
    }

    if (shared) {
      metrics.cacheLookups.inc({ result: "coalesced" });
      const record = hitRecord(job, entryOf(produced), startedAt, started);
      await store(record);
      return { value: produced.value, record, cache: "hit", rateLimit };
    }
    const record = completed(job, produced, progress, startedAt, started);
    await store(record);
    countUsage(record);
    return { value: produced.value, record, cache: key ? "miss" : "bypass", rateLimit };
  }

  /**
   * The upstream call between its reservation and its settlement: the estimated tokens and worst-case cost are
   * held against tpm and the budget before the call (so concurrent requests cannot overshoot), and replaced by
   * what the call really used after it, whatever its outcome.
   */
  async function meteredCall<T>(
    job: Job<T>,
    reservation: Reservation,
    progress: Progress,
    callOptions: CallOptions,
  ): Promise<Produced<T>> {
    // settle() never throws (it retries in the background), so it is not awaited: it joins the next Redis write.
    let produced: Produced<T>;
    try {
      produced = await callWithFallbacks(job, progress, callOptions);
    } catch (error) {
      void limiter.settle(reservation, nothing);
      throw error;
    }
    const cost = costUsd(produced.model, produced.usage.prompt_tokens, produced.usage.completion_tokens);
    void limiter.settle(reservation, { tokens: produced.usage.total_tokens, costUsd: cost ?? 0 });
    learn(job, progress.model, produced.reportedPromptTokens);
    return produced;
  }

  /**
   * Runs `attempt` with the job's model, then with each fallback configured for the model or the type, while the
   * failure is the upstream's (an error past retries, a timeout, output that never fit). The caller's own
   * mistakes and a client that left end it at once.
   */
  async function eachModel<R>(
    job: JobInfo<unknown>,
    progress: Progress,
    attempt: (model: string) => Promise<R>,
  ): Promise<R> {
    const models = modelsOf(job);
    for (let i = 0; ; i++) {
      const model = models[i]!;
      progress.model = model;
      try {
        const value = await attempt(model);
        progress.attempts.push({ model, outcome: "ok" });
        return value;
      } catch (error) {
        progress.attempts.push({ model, outcome: isAppError(error) ? error.code : "error" });
        const next = models[i + 1];
        if (!next || !isAppError(error) || !fallbackCodes.has(error.code) || job.context.signal?.aborted) throw error;
        metrics.upstreamErrors.inc({ provider: provider.name, code: error.code });
        deps.logger.warn({ model, fallback: next, code: error.code }, "upstream failed; trying the fallback model");
      }
    }
  }

  function callWithFallbacks<T>(job: Job<T>, progress: Progress, callOptions: CallOptions): Promise<Produced<T>> {
    return eachModel(job as JobInfo<unknown>, progress, (model) => job.call(model, callOptions));
  }

  function entryOf<T>(produced: Produced<T>): CacheEntry<T> {
    return { provider: provider.name, model: produced.model, value: produced.value, usage: produced.usage };
  }

  /**
   * A streamed chat job. Resolves once the first chunk has arrived (or from the cache), so an upstream that fails
   * before answering is an ordinary error response; after that, failures end the stream and are stored.
   * The cache holds the gathered completion, so a stream can answer a later plain request and the other way round.
   */
  async function stream<T>(job: JobInfo<T>, body: ChatCompletionRequest, codec: StreamCodec<T>): Promise<ChatStream> {
    const startedAt = new Date();
    const started = performance.now();
    const key = keyOf(job as JobInfo<unknown>);
    const cacheJob = job as JobInfo<unknown>;
    const subject = limitSubjectOf(job.caller.user, job.caller.key);
    // The first byte waits on these, so the reservation goes out with the limit check and the lookup, in one Redis
    // round trip; a request answered from the cache, or refused, gives it back.
    const reserving = reserveFor(cacheJob, subject);
    reserving.catch(ignore);
    let admitted: LimitState;
    let hit: CacheEntry<T> | undefined;
    try {
      const [admission, found] = await Promise.all([limiter.admitRequest(subject), lookup(job, key)]);
      if (!admission.ok) throw new LimitRefusedError(admission.refusal);
      admitted = admission.state;
      hit = found;
    } catch (error) {
      giveBack(reserving);
      throw error;
    }
    if (hit) {
      giveBack(reserving);
      metrics.cacheLookups.inc({ result: "hit" });
      return {
        cache: "hit",
        rateLimit: admitted,
        chunks: (async function* replay() {
          let replayed = false;
          try {
            for (const chunk of completionToChunks(codec.decode(hit.value, hit))) yield chunk;
            replayed = true;
          } finally {
            // A reader that stopped (a client gone, a shutdown cutting it) still leaves the request's record.
            if (!replayed) {
              const cut = hitRecord(job, hit, startedAt, started);
              cut.status = "cancelled";
              cut.error = { code: "client_closed", message: "the client stopped reading" };
              await store(cut).catch(ignore);
            }
          }
          const record = hitRecord(job, hit, startedAt, started);
          await store(record);
          return record;
        })(),
      };
    }
    metrics.cacheLookups.inc({ result: key ? "miss" : "bypass" });

    const reservation = await reserving;
    const gatherer = createChunkGatherer();
    const partialUsage = (): TokenUsage => {
      const given = gatherer.usage();
      if (given) return given;
      const prompt = countPromptTokens(body.messages, body.tools);
      const completion = countTextTokens(gatherer.text());
      return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    };
    /** Replaces the reservation with what the stream really used, however it ended. */
    const settle = (usage: TokenUsage, model: string) =>
      limiter.settle(reservation, {
        tokens: usage.total_tokens,
        costUsd: costUsd(model, usage.prompt_tokens, usage.completion_tokens) ?? 0,
      });

    const progress = newProgress(job.model);
    const callOptions = callOptionsFor(job, progress);
    let iterator!: AsyncIterator<ChatCompletionChunk>;
    let first!: IteratorResult<ChatCompletionChunk>;
    try {
      // A stream falls back to another model only until its first chunk: after that the client has seen output.
      await eachModel(cacheJob, progress, async (model) => {
        const upstream = provider.chatCompletionStream(model === body.model ? body : { ...body, model }, callOptions);
        iterator = upstream[Symbol.asyncIterator]();
        first = await iterator.next();
      });
    } catch (caught) {
      await settle({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }, job.model);
      const error = asCancellation(cacheJob, caught);
      const empty = { output: null, usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 } };
      await store(ended(cacheJob, error, empty, progress, startedAt, started));
      throw error;
    }
    const upstreamStarted = performance.now();

    return {
      cache: key ? "miss" : "bypass",
      rateLimit: { ...admitted, ...reservation.state },
      chunks: (async function* relay() {
        /** Closes the upstream at once and stores what was produced before the stream ended early. */
        const endEarly = async (error: unknown) => {
          await iterator.return?.(undefined)?.catch(() => {});
          const usage = partialUsage();
          await settle(usage, job.model);
          const partial = { output: job.outputOf(codec.encode(gatherer.completion(usage))), usage };
          await store(ended(cacheJob, error, partial, progress, startedAt, started)).catch(() => {
            // store() has logged it; the stream's own ending is what the client hears about
          });
        };

        let outcome: "done" | "failed" | "stopped" = "stopped";
        let failure: unknown;
        try {
          try {
            for (let next = first; !next.done; next = await iterator.next()) {
              gatherer.add(next.value);
              yield next.value;
            }
            outcome = "done";
          } catch (caught) {
            outcome = "failed";
            failure = asCancellation(cacheJob, caught);
          }
        } finally {
          // Runs when the consumer stops reading (return() at a yield), where nothing after this block runs.
          if (outcome === "stopped") await endEarly(new AppError("client_closed", "the client stopped reading"));
        }
        if (outcome === "failed") {
          await endEarly(failure);
          throw failure;
        }

        const usage = partialUsage();
        const completion = gatherer.completion(usage);
        observeUpstream(job.model, performance.now() - upstreamStarted);
        const produced: Produced<T> = {
          value: codec.encode(completion),
          model: completion.model || job.model,
          usage,
          upstreamMs: performance.now() - upstreamStarted,
          reportedPromptTokens: gatherer.usage()?.prompt_tokens,
        };
        await settle(usage, produced.model);
        learn(cacheJob, progress.model, produced.reportedPromptTokens);
        const record = completed(job, produced, progress, startedAt, started);
        await store(record);
        countUsage(record);
        void fill(key, entryOf(produced));
        return record;
      })(),
    };
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
      deps.logger.error({ err: error, requestRecordId: record.id }, "could not store the request record");
      throw new AppError("service_unavailable", "the request could not be recorded; try again shortly", {
        retryAfterSeconds: 1,
        cause: error,
      });
    }
  }

  /** Usage counted with the tokenizer, for an upstream that reports none. */
  function countedUsage(body: ChatCompletionRequest, answer: string): TokenUsage {
    const prompt = countPromptTokens(body.messages, body.tools);
    const completion = countTextTokens(answer);
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  }

  return { create, createStream, chatCompletion, chatCompletionStream, embeddings };
}

/**
 * How a stream's answer is kept in the cache: the same value a plain request of the same API caches, so a streamed
 * answer serves a later plain repeat and the other way round; a cached value replays as a stream.
 */
interface StreamCodec<T> {
  encode(completion: ChatCompletion): T;
  decode(value: T, entry: { model: string; usage: TokenUsage }): ChatCompletion;
}

const completionCodec: StreamCodec<ChatCompletion> = {
  encode: (completion) => completion,
  decode: (completion) => completion,
};

/** The native API caches text; a replay wraps it in a completion of one choice. */
const textCodec: StreamCodec<unknown> = {
  encode: (completion) => completion.choices[0]?.message.content ?? "",
  decode: (text, entry) => ({
    id: `chatcmpl-${newId("req").slice(4)}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: entry.model,
    choices: [{ index: 0, message: { role: "assistant", content: String(text) }, finish_reason: "stop" }],
    usage: entry.usage,
  }),
};

/** The table is keyed by type; TypeScript cannot follow that correlation, so it is restated once, here. */
function chatTask(type: Exclude<RequestType, "embed">): ChatTask<Exclude<RequestType, "embed">> {
  return taskTypes[type] as unknown as ChatTask<Exclude<RequestType, "embed">>;
}

type NativeChatRequest = Exclude<CreateRequest, { type: "embed" }>;

/** A completion as stored: its text when it is one plain answer, else the assistant messages. */
function completionOutput(completion: ChatCompletion): unknown {
  const [only, ...others] = completion.choices;
  if (only && others.length === 0 && !only.message.tool_calls) return only.message.content;
  return completion.choices.map((choice) => choice.message);
}

/** Embeddings as stored: one vector like the native API's, or all of them. */
function embeddingOutput(response: EmbeddingResponse): unknown {
  const vectors = response.data.map((item) => item.embedding);
  const dimensions = Array.isArray(vectors[0]) ? vectors[0].length : null;
  return vectors.length === 1 ? { embedding: vectors[0], dimensions } : { embeddings: vectors, dimensions };
}

function addUsage(total: TokenUsage, usage: Usage | undefined): TokenUsage {
  if (!usage) return total;
  return {
    prompt_tokens: total.prompt_tokens + usage.prompt_tokens,
    completion_tokens: total.completion_tokens + usage.completion_tokens,
    total_tokens: total.total_tokens + usage.total_tokens,
  };
}
