import type { ResponseCache } from "../cache/response-cache.ts";
import type { RequestRecord } from "../db/types.ts";
import { LimitRefusedError, type Limiter, type LimitState, limitSubjectOf } from "../limits/limiter.ts";
import type { TokenRatios } from "../limits/token-ratios.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { ChatCompletionChunk, ChatCompletionRequest, Provider } from "../providers/provider.ts";
import { createCacheStep } from "./caching.ts";
import { type Called, createCallOnce } from "./call-once.ts";
import { createFallbacks } from "./fallbacks.ts";
import { createEntry } from "./entry.ts";
import { type CacheResult, entered, type Job, type JobInfo, newProgress, startNow } from "./job.ts";
import { createMetering } from "./metering.ts";
import { hitRecord } from "./records.ts";
import { createRecorder, upstreamObserver } from "./recording.ts";
import { createReservationStep } from "./reservation.ts";
import { createSingleFlight, type SingleFlight } from "./single-flight.ts";
import { createStreaming, type OpenedStream, type StreamCodec } from "./streaming.ts";

/**
 * The pipeline every request walks once it is validated and authenticated, whichever API it came in by:
 *
 *   enter (admit, look up, lock, reserve: one Redis round trip) → call once → settle → record → fill → answer
 *
 * A hit is recorded and answered at once. A stream walks the same steps; only its call's output is delivered as it
 * comes, so settle, record and fill run when the stream ends. Streams are not coalesced: a second stream would wait
 * for the first one's end before its first byte.
 */
export interface PipelineDeps {
  provider: Provider;
  cache: ResponseCache;
  /** Resolves once the record is committed. */
  writeRecord(record: RequestRecord): Promise<void>;
  metrics: Metrics;
  logger: Logger;
  cacheTtlSeconds: number;
  /** Models to try in order when a model (or any model of a request type) fails for good. */
  fallbacks?: Record<string, string[]>;
  /** Shares one upstream call among identical requests in flight; in-process only when not given. */
  singleFlight?: SingleFlight;
  limiter: Limiter;
  /** Each model's learned tokens per byte, for reservations that hold whatever the upstream's tokenizer. */
  tokenRatios: TokenRatios;
}

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

export type Pipeline = ReturnType<typeof createPipeline>;

export function createPipeline(deps: PipelineDeps) {
  const { provider, metrics, logger, limiter } = deps;
  const nameOf = (model: string) => provider.nameOf?.(model) ?? provider.name;
  const caching = createCacheStep({ cache: deps.cache, ttlSeconds: deps.cacheTtlSeconds, nameOf });
  const reservations = createReservationStep({ limiter, tokenRatios: deps.tokenRatios, fallbacks: deps.fallbacks });
  const fallbacks = createFallbacks({ modelsOf: reservations.modelsOf, nameOf, metrics, logger });
  const metering = createMetering({ limiter, reservations, fallbacks });
  const singleFlight = deps.singleFlight ?? createSingleFlight({ lockTtlMs: 30_000 });
  const enter = createEntry({ limiter, caching, reservations, singleFlight, metrics });
  const callOnce = createCallOnce({ singleFlight, reservations, metering, caching, fallbacks });
  const recorder = createRecorder({ nameOf, writeRecord: deps.writeRecord, metrics, logger });
  const observeUpstream = upstreamObserver(metrics, nameOf);
  const streaming = createStreaming({
    provider,
    fallbacks,
    metering,
    reservations,
    caching,
    recorder,
    observeUpstream,
  });

  /** A request answered whole: the answer waits for its record's commit. */
  async function run<T>(job: Job<T>): Promise<Outcome<T>> {
    const started = startNow();
    const subject = limitSubjectOf(job.caller.user, job.caller.key);
    const entry = await enter(job, subject, { coalesce: true });
    entered(started);
    const { key, hit } = entry;
    if (hit) {
      const record = hitRecord(job, hit, started);
      await recorder.store(record);
      return { value: hit.value, record, cache: "hit", rateLimit: entry.state };
    }

    const progress = newProgress(job.model);
    let called: Called<T>;
    try {
      called = await callOnce(job, subject, entry, progress);
    } catch (caught) {
      // A request the limits refused did not run: nothing to store.
      if (caught instanceof LimitRefusedError) throw caught;
      throw await recorder.failed(job as JobInfo<unknown>, caught, progress, started);
    }
    const { produced, shared, rateLimit } = called;
    if (shared) {
      metrics.cacheLookups.inc({ result: "coalesced" });
      const record = hitRecord(job, caching.entryOf(produced), started);
      await recorder.store(record);
      return { value: produced.value, record, cache: "hit", rateLimit };
    }
    const record = recorder.completed(job, produced, progress, started);
    await recorder.store(record);
    recorder.countUsage(record);
    return { value: produced.value, record, cache: key ? "miss" : "bypass", rateLimit };
  }

  /**
   * A streamed chat job. Resolves once the first chunk has arrived (or from the cache), so an upstream that fails
   * before answering is an ordinary error response; after that, failures end the stream and are stored.
   */
  async function stream<T>(job: JobInfo<T>, body: ChatCompletionRequest, codec: StreamCodec<T>): Promise<ChatStream> {
    const started = startNow();
    const subject = limitSubjectOf(job.caller.user, job.caller.key);
    const info = job as JobInfo<unknown>;
    const { state, key, hit, reservation: entryReservation } = await enter(job, subject, { coalesce: false });
    entered(started);
    if (hit) return { cache: "hit", rateLimit: state, chunks: streaming.replay(job, hit, codec, started) };

    // Held by the entry: a stream is not coalesced, so it never waits for another call.
    const reservation = entryReservation ?? (await reservations.reserve(info, subject));
    const progress = newProgress(job.model);
    let opened: OpenedStream;
    try {
      opened = await streaming.open(info, body, progress);
    } catch (caught) {
      await metering.settle(reservation, undefined, job.model);
      throw await recorder.failed(info, caught, progress, started);
    }
    return {
      cache: key ? "miss" : "bypass",
      // The entry's windows include its own reservation; one made after it adds its tokens window.
      rateLimit: entryReservation ? state : { ...state, ...reservation.state },
      chunks: streaming.relay({ job, body, codec, key, reservation, progress, started, opened }),
    };
  }

  return { run, stream, observeUpstream };
}
