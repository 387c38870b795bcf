import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createMemoryCache } from "../../src/cache/memory-cache.ts";
import type { UserRecord } from "../../src/db/types.ts";
import { AppError } from "../../src/errors.ts";
import { createLimiter, LimitRefusedError } from "../../src/limits/limiter.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { createCacheStep } from "../../src/requests/caching.ts";
import { createEntry } from "../../src/requests/entry.ts";
import { createFallbacks } from "../../src/requests/fallbacks.ts";
import { type CacheMode, type JobInfo, newProgress } from "../../src/requests/job.ts";
import { createReservationStep } from "../../src/requests/reservation.ts";
import { createSingleFlight } from "../../src/requests/single-flight.ts";
import { createTokenRatios } from "../../src/limits/token-ratios.ts";

/** The pipeline's steps one at a time: plain values in, plain values out. */

const someone = { id: "usr_steps" } as UserRecord;

function job(overrides: { cacheMode?: CacheMode; cacheable?: boolean; signal?: AbortSignal } = {}): JobInfo<string> {
  return {
    caller: { user: someone, key: null },
    context: { cacheMode: overrides.cacheMode ?? "use", signal: overrides.signal },
    type: "chat",
    source: "openai",
    model: "gpt-4o",
    input: "hi",
    options: {},
    metadata: {},
    cacheable: overrides.cacheable ?? true,
    outputOf: (value) => value,
    estimate: () => ({ body: { input: "hi" }, maxOutputTokens: 0 }),
  };
}

const produced = {
  value: "answer",
  model: "gpt-4o",
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
};

describe("lookup and fill", () => {
  const step = (ttlSeconds = 60) => createCacheStep({ cache: createMemoryCache(10), ttlSeconds, nameOf: () => "mock" });

  test("no key when the request, Cache-Control or the configuration says not to cache", () => {
    assert.equal(step().keyOf(job({ cacheable: false })), undefined);
    assert.equal(step().keyOf(job({ cacheMode: "bypass" })), undefined);
    assert.equal(step(0).keyOf(job()), undefined);
    assert.equal(step().keyOf(job({ cacheMode: "refresh" })), step().keyOf(job()));
  });

  test("a filled answer is found again, but not by a refresh; an unreadable entry is a miss", async () => {
    const cache = createMemoryCache(10);
    const caching = createCacheStep({ cache, ttlSeconds: 60, nameOf: () => "mock" });
    const key = caching.keyOf(job());
    await caching.fill(key, { ...produced, provider: "mock", upstreamMs: 5, reportedPromptTokens: 1 });
    assert.deepEqual(await caching.lookup(job(), key), { provider: "mock", ...produced });
    assert.equal(await caching.lookup(job({ cacheMode: "refresh" }), key), undefined);
    await cache.set(key!, "{not json", 60);
    assert.equal(await caching.lookup(job(), key), undefined);
  });
});

describe("entry", () => {
  const subject = (rpm: number | null, tpm: number | null = null) => ({
    userId: `usr_${Math.random()}`,
    keyId: null,
    rpm,
    tpm,
    monthlyBudgetUsd: null,
  });
  const entryWith = () => {
    const limiter = createLimiter();
    const caching = createCacheStep({ cache: createMemoryCache(10), ttlSeconds: 60, nameOf: () => "mock" });
    const reservations = createReservationStep({ limiter, tokenRatios: createTokenRatios() });
    const singleFlight = createSingleFlight({ lockTtlMs: 1_000 });
    const enter = createEntry({ limiter, caching, reservations, singleFlight, metrics: createMetrics() });
    return { limiter, caching, enter };
  };

  test("admits with the windows left and the cached answer; refuses with the limit that said no", async () => {
    const { limiter, caching, enter } = entryWith();
    const who = subject(2);
    const first = await enter(job(), who, { coalesce: true });
    assert.equal(first.hit, undefined);
    assert.equal(first.state.requests?.remaining, 1);
    await caching.fill(first.key, { ...produced, provider: "mock", upstreamMs: 5, reportedPromptTokens: 1 });
    const second = await enter(job(), who, { coalesce: true });
    assert.equal(second.hit?.value, "answer");
    await assert.rejects(
      enter(job(), who, { coalesce: true }),
      (error) => error instanceof LimitRefusedError && error.refusal.limit === "rpm",
    );
    await limiter.close();
  });

  test("a miss holds its tokens for the call; a hit holds nothing", async () => {
    const { limiter, caching, enter } = entryWith();
    const who = subject(null, 10_000);
    const miss = await enter(job(), who, { coalesce: true });
    assert.ok(miss.reservation, "the call's tokens are held");
    const held = miss.state.tokens?.remaining;
    assert.ok(held !== undefined && held < 10_000, `tokens left after the reservation: ${held}`);
    await caching.fill(miss.key, { ...produced, provider: "mock", upstreamMs: 5, reportedPromptTokens: 1 });
    const hit = await enter(job(), who, { coalesce: true });
    assert.equal(hit.hit?.value, "answer");
    assert.equal(hit.reservation, undefined);
    assert.equal((await limiter.peek(who)).tokens?.remaining, held, "the hit took nothing from tpm");
    await limiter.close();
  });
});

describe("fallbacks", () => {
  const fallbacks = () =>
    createFallbacks({
      modelsOf: () => ["gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo"],
      nameOf: () => "mock",
      metrics: createMetrics(),
      logger: createLogger("silent"),
    });

  test("an upstream failure moves to the next model, and each attempt is kept for the record", async () => {
    const progress = newProgress("gpt-4o");
    const tried: string[] = [];
    const answer = await fallbacks().eachModel(job(), progress, async (model) => {
      tried.push(model);
      if (model !== "gpt-3.5-turbo")
        throw new AppError(model === "gpt-4o" ? "upstream_timeout" : "upstream_error", "no");
      return "from the last";
    });
    assert.equal(answer, "from the last");
    assert.deepEqual(tried, ["gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo"]);
    assert.equal(progress.model, "gpt-3.5-turbo");
    assert.deepEqual(
      progress.attempts.map((a) => a.outcome),
      ["upstream_timeout", "upstream_error", "ok"],
    );
  });

  test("the caller's own mistake, or a client that left, ends it at the first model", async () => {
    const tried: string[] = [];
    const attempt = async (model: string): Promise<string> => {
      tried.push(model);
      throw new AppError("invalid_request", "bad field");
    };
    await assert.rejects(fallbacks().eachModel(job(), newProgress("gpt-4o"), attempt), /bad field/);
    const gone = new AbortController();
    gone.abort();
    const failing = async (model: string): Promise<string> => {
      tried.push(model);
      throw new AppError("upstream_error", "down");
    };
    await assert.rejects(fallbacks().eachModel(job({ signal: gone.signal }), newProgress("gpt-4o"), failing), /down/);
    assert.deepEqual(tried, ["gpt-4o", "gpt-4o"]);
  });

  test("retries the provider reports are counted against the model being tried", () => {
    const progress = newProgress("gpt-4o");
    const options = fallbacks().callOptions(job(), progress);
    options.onRetry?.({ attempt: 2, reason: "503", delayMs: 10 });
    assert.equal(progress.retries, 1);
    assert.deepEqual(progress.attempts, [{ model: "gpt-4o", outcome: "503" }]);
  });
});
