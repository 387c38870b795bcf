import type { RequestRecord } from "../db/types.ts";
import { AppError } from "../errors.ts";
import { newId } from "../ids.ts";
import type { Reservation } from "../limits/limiter.ts";
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Provider } from "../providers/provider.ts";
import { countPromptTokens, countTextTokens } from "../tokens.ts";
import type { CacheStep } from "./caching.ts";
import { completionToChunks, createChunkGatherer } from "./chat-stream.ts";
import type { Fallbacks } from "./fallbacks.ts";
import type { CacheEntry, JobInfo, Produced, Progress, Started, TokenUsage } from "./job.ts";
import type { Metering } from "./metering.ts";
import { hitRecord } from "./records.ts";
import { asCancellation, type Recorder } from "./recording.ts";
import type { ReservationStep } from "./reservation.ts";

/**
 * How a stream's answer is kept in the cache: the same value a plain request of the same API caches, so a streamed
 * answer serves a later plain repeat and the other way round; a cached value replays as a stream.
 */
export interface StreamCodec<T> {
  encode(completion: ChatCompletion): T;
  decode(value: T, entry: { model: string; usage: TokenUsage }): ChatCompletion;
}

export const completionCodec: StreamCodec<ChatCompletion> = {
  encode: (completion) => completion,
  decode: (completion) => completion,
};

/** The native API caches text; a replay wraps it in a completion of one choice. */
export const textCodec: StreamCodec<unknown> = {
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

/** A stream's upstream, opened: its first chunk has arrived, so a failure before it was an ordinary error. */
export interface OpenedStream {
  iterator: AsyncIterator<ChatCompletionChunk>;
  first: IteratorResult<ChatCompletionChunk>;
  /** When the first chunk arrived: the upstream's time is counted from there to the last. */
  openedAt: number;
}

/** One streamed call from its first chunk on: what it needs to settle, record and fill when it ends. */
export interface Relayed<T> {
  job: JobInfo<T>;
  body: ChatCompletionRequest;
  codec: StreamCodec<T>;
  key: string | undefined;
  reservation: Reservation;
  progress: Progress;
  started: Started;
  opened: OpenedStream;
}

/**
 * The call step's delivery for a stream: the upstream's chunks as they come rather than one answer. The steps
 * around it are the same (settle, record, fill), run when the stream ends, however it ends.
 */
export function createStreaming(deps: {
  provider: Provider;
  fallbacks: Fallbacks;
  metering: Metering;
  reservations: ReservationStep;
  caching: CacheStep;
  recorder: Recorder;
  observeUpstream(model: string, upstreamMs: number): void;
}) {
  const { provider, fallbacks, metering, reservations, caching, recorder, observeUpstream } = deps;
  const nameOf = (model: string) => provider.nameOf?.(model) ?? provider.name;

  /** Calls until the first chunk, falling back to another model only until then: after it the client has seen output. */
  async function open(job: JobInfo<unknown>, body: ChatCompletionRequest, progress: Progress): Promise<OpenedStream> {
    const options = fallbacks.callOptions(job, progress);
    return fallbacks.eachModel(job, progress, async (model) => {
      const upstream = provider.chatCompletionStream(model === body.model ? body : { ...body, model }, options);
      const iterator = upstream[Symbol.asyncIterator]();
      const first = await iterator.next();
      return { iterator, first, openedAt: performance.now() };
    });
  }

  /** A cached answer as a stream. A reader that stops (a client gone, a shutdown) still leaves a record. */
  async function* replay<T>(
    job: JobInfo<T>,
    hit: CacheEntry<T>,
    codec: StreamCodec<T>,
    started: Started,
  ): AsyncGenerator<ChatCompletionChunk, RequestRecord> {
    let replayed = false;
    try {
      for (const chunk of completionToChunks(codec.decode(hit.value, hit))) yield chunk;
      replayed = true;
    } finally {
      if (!replayed) {
        const cut = hitRecord(job, hit, started);
        cut.status = "cancelled";
        cut.error = { code: "client_closed", message: "the client stopped reading" };
        await recorder.store(cut).catch(ignore);
      }
    }
    const record = hitRecord(job, hit, started);
    await recorder.store(record);
    return record;
  }

  /**
   * Every chunk, the usage chunk last; returns the stored record once it is committed. A stream cut short (the
   * upstream failed, the client stopped reading) closes the upstream at once and stores what was produced.
   */
  async function* relay<T>(stream: Relayed<T>): AsyncGenerator<ChatCompletionChunk, RequestRecord> {
    const { job, body, codec, key, reservation, progress, started } = stream;
    const { iterator, first } = stream.opened;
    const info = job as JobInfo<unknown>;
    const gatherer = createChunkGatherer();
    const usageSoFar = (): TokenUsage => {
      const given = gatherer.usage();
      if (given) return given;
      const prompt = countPromptTokens(body.messages, body.tools);
      const completion = countTextTokens(gatherer.text());
      return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    };
    const endEarly = async (error: unknown) => {
      await iterator.return?.(undefined)?.catch(ignore);
      const usage = usageSoFar();
      await metering.settle(reservation, usage, job.model);
      const partial = { output: job.outputOf(codec.encode(gatherer.completion(usage))), usage };
      // store() has logged a failure; the stream's own ending is what the client hears about
      await recorder.store(recorder.ended(info, error, partial, progress, started)).catch(ignore);
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
        failure = asCancellation(info, caught);
      }
    } finally {
      // Runs when the consumer stops reading (return() at a yield), where nothing after this block runs.
      if (outcome === "stopped") await endEarly(new AppError("client_closed", "the client stopped reading"));
    }
    if (outcome === "failed") {
      await endEarly(failure);
      throw failure;
    }

    const usage = usageSoFar();
    const completion = gatherer.completion(usage);
    const upstreamMs = performance.now() - stream.opened.openedAt;
    observeUpstream(progress.model, upstreamMs);
    const produced: Produced<T> = {
      value: codec.encode(completion),
      model: completion.model || job.model,
      provider: nameOf(progress.model),
      usage,
      upstreamMs,
      reportedPromptTokens: gatherer.usage()?.prompt_tokens,
    };
    await metering.settle(reservation, usage, produced.model);
    reservations.learn(info, progress.model, produced.reportedPromptTokens);
    const record = recorder.completed(job, produced, progress, started);
    await recorder.store(record);
    recorder.countUsage(record);
    void caching.fill(key, produced);
    return record;
  }

  return { open, replay, relay };
}

const ignore = () => {};
