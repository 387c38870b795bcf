import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createMemoryCache } from "../../src/cache/memory-cache.ts";
import type { RequestRecord, UserRecord } from "../../src/db/types.ts";
import { AppError, isAppError } from "../../src/errors.ts";
import { createLimiter, LimitRefusedError } from "../../src/limits/limiter.ts";
import { createTokenRatios } from "../../src/limits/token-ratios.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { createMockProvider } from "../../src/providers/mock.ts";
import type { ChatCompletionChunk, ChatCompletionRequest, Provider } from "../../src/providers/provider.ts";
import { createRequestService } from "../../src/requests/request-service.ts";

/**
 * The whole pipeline in one process: the built-in model, the memory cache, in-process limits, and records kept in
 * an array. No sockets, no database: what each step decides, seen from the records and the calls the upstream got.
 */

function user(limits: Partial<Pick<UserRecord, "rpm" | "tpm" | "monthlyBudgetUsd">> = {}): UserRecord {
  return {
    id: `usr_${Math.random().toString(36).slice(2)}`,
    email: "someone@example.com",
    name: null,
    role: "user",
    disabled: false,
    rpm: limits.rpm ?? null,
    tpm: limits.tpm ?? null,
    monthlyBudgetUsd: limits.monthlyBudgetUsd ?? null,
    createdAt: new Date(),
    updatedAt: new Date(),
  };
}

interface Harness {
  service: ReturnType<typeof createRequestService>;
  records: RequestRecord[];
  /** The models of the calls that reached the upstream, in order. */
  calls: string[];
  limiter: ReturnType<typeof createLimiter>;
}

/** `failing`: models whose calls fail as an upstream past its retries does; `writeRecord` replaces the store. */
function harness(
  options: {
    failing?: string[];
    fallbacks?: Record<string, string[]>;
    writeRecord?: (record: RequestRecord) => Promise<void>;
    /** Holds each call until it resolves, so that requests can meet in flight. */
    gate?: Promise<void>;
  } = {},
): Harness {
  const mock = createMockProvider();
  const calls: string[] = [];
  const records: RequestRecord[] = [];
  const failIf = (model: string) => {
    calls.push(model);
    if (options.failing?.includes(model)) throw new AppError("upstream_error", `${model} is down`);
  };
  const provider: Provider = {
    ...mock,
    async chatCompletion(body, callOptions) {
      await options.gate;
      failIf(body.model);
      return mock.chatCompletion(body, callOptions);
    },
    chatCompletionStream(body, callOptions) {
      failIf(body.model);
      return mock.chatCompletionStream(body, callOptions);
    },
  };
  const limiter = createLimiter();
  const service = createRequestService({
    provider,
    cache: createMemoryCache(100),
    writeRecord: options.writeRecord ?? (async (record) => void records.push(record)),
    metrics: createMetrics(),
    logger: createLogger("silent"),
    cacheTtlSeconds: 60,
    defaultChatModel: "gpt-4o-mini",
    defaultEmbedModel: "text-embedding-3-small",
    fallbacks: options.fallbacks,
    limiter,
    tokenRatios: createTokenRatios(),
  });
  return { service, records, calls, limiter };
}

const chat = (content: string, model = "gpt-4o-mini"): ChatCompletionRequest => ({
  model,
  messages: [{ role: "user", content }],
});
const use = { cacheMode: "use" as const };

async function drain(chunks: AsyncGenerator<ChatCompletionChunk, RequestRecord>) {
  const seen: ChatCompletionChunk[] = [];
  for (;;) {
    const next = await chunks.next();
    if (next.done) return { seen, record: next.value };
    seen.push(next.value);
  }
}

describe("the request pipeline, in process", () => {
  test("a miss calls once and is recorded with its cost; the repeat is a hit, recorded at no cost, with no call", async () => {
    const { service, records, calls } = harness();
    const caller = { user: user(), key: null };
    const first = await service.chatCompletion(caller, chat("hello there"), use);
    const second = await service.chatCompletion(caller, chat("hello there"), use);
    assert.equal(first.cache, "miss");
    assert.equal(second.cache, "hit");
    assert.deepEqual(second.value, first.value);
    assert.deepEqual(calls, ["gpt-4o-mini"]);
    assert.deepEqual(
      records.map((r) => [r.status, r.cached, r.totalTokens > 0]),
      [
        ["completed", false, true],
        ["completed", true, true],
      ],
    );
    assert.ok((records[0]!.costUsd ?? 0) > 0);
    assert.equal(records[1]!.costUsd, 0);
  });

  test("a request the limits refuse makes no call and leaves no record", async () => {
    const { service, records, calls } = harness();
    const caller = { user: user({ rpm: 1 }), key: null };
    await service.chatCompletion(caller, chat("one"), use);
    await assert.rejects(service.chatCompletion(caller, chat("two"), use), LimitRefusedError);
    assert.equal(calls.length, 1);
    assert.equal(records.length, 1);
  });

  test("identical requests in flight together share one call; the others are recorded as hits", async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { service, records, calls } = harness({ gate });
    const caller = { user: user({ tpm: 1_000_000 }), key: null };
    const together = [1, 2, 3].map(() => service.chatCompletion(caller, chat("same question"), use));
    open();
    const outcomes = await Promise.all(together);
    assert.deepEqual(outcomes.map((o) => o.cache).sort(), ["hit", "hit", "miss"]);
    assert.equal(calls.length, 1);
    assert.deepEqual(records.map((r) => r.cached).sort(), [false, true, true]);
  });

  test("what a call used replaces its reservation: tpm is charged the recorded tokens, no more", async () => {
    const { service, records, limiter } = harness();
    const who = user({ tpm: 100_000 });
    await service.chatCompletion({ user: who, key: null }, chat("count me"), use);
    const state = await limiter.peek({
      userId: who.id,
      keyId: null,
      rpm: null,
      tpm: 100_000,
      monthlyBudgetUsd: null,
    });
    assert.equal(state.tokens?.remaining, 100_000 - records[0]!.totalTokens);
  });

  test("an upstream failure falls back to the next model; with none left it is recorded as failed", async () => {
    const withFallback = harness({ failing: ["gpt-4o"], fallbacks: { "gpt-4o": ["gpt-4o-mini"] } });
    const caller = { user: user(), key: null };
    const outcome = await withFallback.service.chatCompletion(caller, chat("fall back", "gpt-4o"), use);
    assert.deepEqual(withFallback.calls, ["gpt-4o", "gpt-4o-mini"]);
    assert.deepEqual(
      outcome.record.attempts.map((a) => [a.model, a.outcome]),
      [
        ["gpt-4o", "upstream_error"],
        ["gpt-4o-mini", "ok"],
      ],
    );

    const alone = harness({ failing: ["gpt-4o"] });
    await assert.rejects(
      alone.service.chatCompletion(caller, chat("no way out", "gpt-4o"), use),
      (error) => isAppError(error) && error.code === "upstream_error",
    );
    assert.deepEqual(
      alone.records.map((r) => [r.status, r.error?.code]),
      [["failed", "upstream_error"]],
    );
  });

  test("a client gone before the call is recorded as cancelled", async () => {
    const { service, records } = harness();
    const gone = new AbortController();
    gone.abort();
    await assert.rejects(
      service.chatCompletion({ user: user(), key: null }, chat("too late"), { cacheMode: "use", signal: gone.signal }),
      (error) => isAppError(error) && error.code === "client_closed",
    );
    assert.deepEqual(
      records.map((r) => [r.status, r.error?.code]),
      [["cancelled", "client_closed"]],
    );
  });

  test("a record that cannot be stored refuses the answer with service_unavailable", async () => {
    const { service } = harness({ writeRecord: () => Promise.reject(new Error("database gone")) });
    await assert.rejects(
      service.chatCompletion({ user: user(), key: null }, chat("unrecorded"), use),
      (error) => isAppError(error) && error.code === "service_unavailable",
    );
  });

  test("a stream walks the same steps: recorded whole when it ends, and its repeat, streamed or not, is a hit", async () => {
    const { service, records, calls } = harness();
    const caller = { user: user({ tpm: 100_000 }), key: null };
    const streamed = await service.chatCompletionStream(caller, chat("stream this"), use);
    assert.equal(streamed.cache, "miss");
    const { seen, record } = await drain(streamed.chunks);
    const text = seen.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
    assert.equal(record.output, text);
    assert.equal(record.cached, false);

    const replayed = await service.chatCompletionStream(caller, chat("stream this"), use);
    assert.equal(replayed.cache, "hit");
    const again = await drain(replayed.chunks);
    assert.equal(again.seen.map((chunk) => chunk.choices[0]?.delta.content ?? "").join(""), text);
    const plain = await service.chatCompletion(caller, chat("stream this"), use);
    assert.equal(plain.cache, "hit");
    assert.equal(plain.value.choices[0]?.message.content, text);
    assert.equal(calls.length, 1);
    assert.deepEqual(
      records.map((r) => r.cached),
      [false, true, true],
    );
  });

  test("a stream whose upstream fails before its first chunk is an error, and is recorded as failed", async () => {
    const { service, records } = harness({ failing: ["gpt-4o"] });
    await assert.rejects(
      service.chatCompletionStream({ user: user(), key: null }, chat("never starts", "gpt-4o"), use),
      (error) => isAppError(error) && error.code === "upstream_error",
    );
    assert.deepEqual(
      records.map((r) => [r.status, r.error?.code]),
      [["failed", "upstream_error"]],
    );
  });

  test("a stream the reader stops early is recorded as cancelled, with what it had produced", async () => {
    const { service, records } = harness();
    const streamed = await service.chatCompletionStream(
      { user: user(), key: null },
      chat("a long answer that the reader will not finish"),
      use,
    );
    await streamed.chunks.next();
    await streamed.chunks.return(undefined as never);
    assert.deepEqual(
      records.map((r) => [r.status, r.error?.code]),
      [["cancelled", "client_closed"]],
    );
    assert.ok(records[0]!.promptTokens > 0);
  });

  test("the native API goes through the same pipeline: text cached, and a native stream's repeat is a hit", async () => {
    const { service, records, calls } = harness();
    const caller = { user: user(), key: null };
    const request = { type: "chat" as const, input: "native hello", options: {}, cache: true, stream: false };
    const first = await service.create(caller, request, use);
    assert.equal(typeof first.value, "string");
    const streamed = await service.createStream(caller, { ...request, stream: true }, use);
    assert.equal(streamed.cache, "hit");
    await drain(streamed.chunks);
    assert.equal(calls.length, 1);
    assert.deepEqual(
      records.map((r) => [r.source, r.cached]),
      [
        ["native", false],
        ["native", true],
      ],
    );
  });
});
