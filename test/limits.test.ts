import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Cluster, Redis } from "ioredis";
import { AppError } from "../src/errors.ts";
import { budgetMonthOf } from "../src/limits/limit-store.ts";
import {
  messageAllowanceTokens,
  nonTextPartTokens,
  observedTokensPerByte,
  promptSize,
  promptTokenBound,
  requestAllowanceTokens,
  worstCaseCostUsd,
} from "../src/limits/estimate.ts";
import { refusalError } from "../src/http/limit-refusal.ts";
import { formatResetDuration, rateLimitHeaders } from "../src/http/rate-limit-headers.ts";
import {
  type CreateLimiterOptions,
  createLimiter,
  type Limiter,
  type LimitSubject,
  type Reservation,
} from "../src/limits/limiter.ts";
import { createTokenRatios, ratioHeadroom, unseenModelTokensPerByte } from "../src/limits/token-ratios.ts";
import { countPromptTokens } from "../src/tokens.ts";
import { limitKeys } from "../src/limits/redis-limit-store.ts";
import { createMetrics } from "../src/observability/metrics.ts";
import { type RedisClient, userHashTag } from "../src/redis-connection.ts";
import { startThrowawayRedisCluster, type ThrowawayRedisCluster } from "./helpers/throwaway-redis-cluster.ts";

const redisUrl = "redis://127.0.0.1:6379";

/** Unique per test, so parallel test files and repeated runs never share a counter in the shared Redis. */
const newUserId = () => `usr_lt${randomBytes(8).toString("hex")}`;
const newKeyId = () => `key_lt${randomBytes(8).toString("hex")}`;

const subject = (overrides: Partial<LimitSubject> = {}): LimitSubject => ({
  userId: newUserId(),
  keyId: null,
  rpm: null,
  tpm: null,
  monthlyBudgetUsd: null,
  ...overrides,
});

/** A clock the test moves by hand; starts at the real time so Redis TTLs stay meaningful. */
function manualClock() {
  let at = Date.now();
  return {
    now: () => at,
    advance(ms: number) {
      at += ms;
    },
  };
}

async function settledOutcomes<T>(work: Array<Promise<T>>) {
  const results = await Promise.allSettled(work);
  const passed = results.filter((result) => result.status === "fulfilled").length;
  const errors = results.flatMap((result) => (result.status === "rejected" ? [result.reason as unknown] : []));
  return { passed, errors };
}

/**
 * The limiter as a caller of the API meets it: a refusal (a value) becomes the 429 the HTTP layer answers with
 * (http/limit-refusal.ts), so these tests check the limits and their answer together.
 */
function answering(limiter: Limiter) {
  return {
    kind: limiter.kind,
    async admitRequest(subject: LimitSubject) {
      const admission = await limiter.admitRequest(subject);
      if (!admission.ok) throw refusalError(admission.refusal);
      return admission.state;
    },
    async reserve(subject: LimitSubject, estimate: { tokens: number; costUsd: number }): Promise<Reservation> {
      const result = await limiter.reserve(subject, estimate);
      if (!result.ok) throw refusalError(result.refusal);
      return result.reservation;
    },
    settle: (reservation: Reservation, actual: { tokens: number; costUsd: number }) =>
      limiter.settle(reservation, actual),
    peek: (subject: LimitSubject) => limiter.peek(subject),
    close: () => limiter.close(),
  };
}

function assertAppError(error: unknown, code: string): asserts error is AppError {
  assert.ok(error instanceof AppError, `expected an AppError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
}

async function connectRedis(): Promise<Redis> {
  const redis = new Redis(redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  await redis.connect();
  return redis;
}

/** Deletes every limits and budget key of the subjects a test made (never anything else in the shared Redis). */
async function removeKeys(redis: RedisClient, subjects: LimitSubject[]) {
  const names: string[] = [];
  for (const { userId, keyId } of subjects) {
    const keys = limitKeys({ userId, keyId }, budgetMonthOf(Date.now()));
    names.push(keys.userRpm, keys.userTpm, keys.userTpmAmounts, keys.budget);
    if (keyId) names.push(keys.keyRpm, keys.keyTpm, keys.keyTpmAmounts);
  }
  // One at a time: on a cluster, keys of different users live in different slots.
  await Promise.all(names.map((name) => redis.del(name)));
}

// The same behaviour on one Redis, on a three-master Redis Cluster (each script on one slot: no CROSSSLOT), and in
// memory.
for (const backend of ["redis", "cluster", "memory"] as const) {
  describe(`limiter (${backend})`, () => {
    let redis: RedisClient | undefined;
    let cluster: ThrowawayRedisCluster | undefined;
    const limiters: Limiter[] = [];
    const subjects: LimitSubject[] = [];
    /** Cache entries and locks a test wrote. */
    const cleanups: string[] = [];

    before(async () => {
      if (backend === "redis") redis = await connectRedis();
      if (backend === "cluster") {
        cluster = await startThrowawayRedisCluster();
        const nodes = cluster.ports.map((port) => ({ host: "127.0.0.1", port }));
        const client = new Cluster(nodes, { lazyConnect: true, enableOfflineQueue: false });
        await client.connect();
        redis = client;
      }
    });
    after(async () => {
      try {
        for (const limiter of limiters) await limiter.close();
        if (redis) {
          await removeKeys(redis, subjects);
          await Promise.all(cleanups.map((name) => redis?.del(name)));
        }
      } finally {
        redis?.disconnect();
        await cluster?.close();
      }
    });

    function limiterWith(options: CreateLimiterOptions = {}) {
      const limiter = createLimiter({
        ...options,
        ...(redis && { redis }),
        onRedisError: (error) => assert.fail(`unexpected Redis error: ${String(error)}`),
      });
      limiters.push(limiter);
      return answering(limiter);
    }
    function track(s: LimitSubject): LimitSubject {
      subjects.push(s);
      return s;
    }

    test("limits answer with values: which limit refused, for whom, and when to retry; never an HTTP error", async () => {
      const limiter = createLimiter({ ...(redis && { redis }), onRedisError: (error) => assert.fail(String(error)) });
      try {
        const user = track(subject({ rpm: 1, tpm: 100, monthlyBudgetUsd: 0.5 }));
        assert.equal((await limiter.admitRequest(user)).ok, true);
        const refused = await limiter.admitRequest(user);
        assert.ok(!refused.ok);
        assert.equal(refused.refusal.limit, "rpm");
        assert.ok(refused.refusal.limit === "rpm" && refused.refusal.scope === "user" && refused.refusal.allowed === 1);
        assert.ok(refused.refusal.retryAfterMs > 59_000 && refused.refusal.retryAfterMs <= 60_000);
        const tooLarge = await limiter.reserve(user, { tokens: 101, costUsd: 0 });
        assert.ok(!tooLarge.ok && tooLarge.refusal.limit === "tpm" && tooLarge.refusal.tooLarge);
        const overBudget = await limiter.reserve(user, { tokens: 1, costUsd: 0.6 });
        assert.ok(!overBudget.ok && overBudget.refusal.limit === "budget");
        assert.equal(overBudget.refusal.budgetUsd, 0.5);
        assert.equal(overBudget.refusal.costUsd, 0.6);
      } finally {
        await limiter.close();
      }
    });

    test("rpm: 50 concurrent requests against rpm 10 let exactly 10 through", async () => {
      const metrics = createMetrics();
      const limiter = limiterWith({ metrics });
      assert.equal(limiter.kind, backend === "memory" ? "memory" : "redis");
      const user = track(subject({ rpm: 10 }));
      const { passed, errors } = await settledOutcomes(Array.from({ length: 50 }, () => limiter.admitRequest(user)));
      assert.equal(passed, 10);
      assert.equal(errors.length, 40);
      for (const error of errors) {
        assertAppError(error, "rate_limited");
        assert.ok(error.retryAfterSeconds !== undefined && error.retryAfterSeconds >= 59, `${error.retryAfterSeconds}`);
        assert.ok(error.retryAfterSeconds <= 60);
        assert.equal(error.headers?.["x-ratelimit-limit-requests"], "10");
        assert.equal(error.headers?.["x-ratelimit-remaining-requests"], "0");
        assert.match(error.headers?.["x-ratelimit-reset-requests"] ?? "", /^(59(\.\d+)?s|1m0s)$/);
        assert.equal(error.headers?.["x-should-retry"], undefined, "a wait under a minute is worth retrying");
      }
      const rejections = await metrics.registry.getSingleMetricAsString("arh_rate_limit_rejections_total");
      assert.match(rejections, /arh_rate_limit_rejections_total\{limit="rpm"\} 40/);
    });

    test("rpm: success reports the window, and a slot frees when the oldest request leaves it", async () => {
      const clock = manualClock();
      const limiter = limiterWith({ now: clock.now });
      const user = track(subject({ rpm: 3 }));
      const first = await limiter.admitRequest(user);
      assert.deepEqual(first.requests, { limit: 3, remaining: 2, resetMs: 60_000 });
      clock.advance(10_000);
      await limiter.admitRequest(user);
      clock.advance(10_000);
      const third = await limiter.admitRequest(user);
      assert.deepEqual(third.requests, { limit: 3, remaining: 0, resetMs: 60_000 });
      clock.advance(10_000);
      const refused = await limiter.admitRequest(user).catch((error: unknown) => error);
      assertAppError(refused, "rate_limited");
      // The first request (30 s ago) leaves the window in 30 s.
      assert.equal(refused.retryAfterSeconds, 30);
      assert.equal(refused.headers?.["retry-after-ms"], "30000");
      assert.equal(
        refused.headers?.["x-ratelimit-reset-requests"],
        "50s",
        "the newest entry (20 s old) leaves in 50 s",
      );
      clock.advance(30_000);
      const again = await limiter.admitRequest(user);
      assert.equal(again.requests?.remaining, 0);
      assert.deepEqual(await limiter.peek(user), { requests: { limit: 3, remaining: 0, resetMs: 60_000 } });
    });

    test("rpm: no limit costs nothing and reports nothing", async () => {
      const limiter = limiterWith();
      const user = subject();
      for (let i = 0; i < 100; i++) assert.deepEqual(await limiter.admitRequest(user), {});
    });

    test("rpm: a key's own limit applies on top of its user's", async () => {
      const limiter = limiterWith();
      const userId = newUserId();
      const keyA = track(subject({ userId, keyId: newKeyId(), rpm: 5, keyRpm: 2 }));
      const keyB = track(subject({ userId, keyId: newKeyId(), rpm: 5 }));
      const a = await settledOutcomes(Array.from({ length: 4 }, () => limiter.admitRequest(keyA)));
      assert.equal(a.passed, 2, "key A stops at its own 2");
      assertAppError(a.errors[0], "rate_limited");
      assert.match(a.errors[0].message, /API key/);
      const b = await settledOutcomes(Array.from({ length: 5 }, () => limiter.admitRequest(keyB)));
      assert.equal(b.passed, 3, "the user's 5 are shared by both keys");
      assertAppError(b.errors[0], "rate_limited");
      assert.match(b.errors[0].message, /for this user/);
    });

    test("tpm: reserve, refuse what does not fit, settle refunds the unused part", async () => {
      const limiter = limiterWith();
      const user = track(subject({ tpm: 1000 }));
      const first = await limiter.reserve(user, { tokens: 600, costUsd: 0 });
      assert.equal(first.state.tokens?.remaining, 400);
      assert.equal(first.state.tokens?.limit, 1000);
      const refused = await limiter.reserve(user, { tokens: 500, costUsd: 0 }).catch((error: unknown) => error);
      assertAppError(refused, "rate_limited");
      assert.equal(refused.headers?.["x-ratelimit-limit-tokens"], "1000");
      assert.equal(refused.headers?.["x-ratelimit-remaining-tokens"], "400");
      assert.ok((refused.retryAfterSeconds ?? 0) >= 59);
      await limiter.settle(first, { tokens: 100, costUsd: 0 });
      const second = await limiter.reserve(user, { tokens: 500, costUsd: 0 });
      assert.equal(second.state.tokens?.remaining, 400, "1000 - 100 used - 500 reserved");
      // A second settle of the same reservation changes nothing.
      await limiter.settle(first, { tokens: 0, costUsd: 0 });
      assert.equal((await limiter.peek(user)).tokens?.remaining, 400);
    });

    test("tpm: concurrent reserves never overshoot", async () => {
      const limiter = limiterWith();
      const user = track(subject({ tpm: 1000 }));
      const { passed, errors } = await settledOutcomes(
        Array.from({ length: 30 }, () => limiter.reserve(user, { tokens: 100, costUsd: 0 })),
      );
      assert.equal(passed, 10);
      for (const error of errors) assertAppError(error, "rate_limited");
    });

    test("tpm: the tokens leave the window after a minute", async () => {
      const clock = manualClock();
      const limiter = limiterWith({ now: clock.now });
      const user = track(subject({ tpm: 1000 }));
      await limiter.reserve(user, { tokens: 700, costUsd: 0 });
      clock.advance(20_000);
      await limiter.reserve(user, { tokens: 300, costUsd: 0 });
      clock.advance(10_000);
      const refused = await limiter.reserve(user, { tokens: 500, costUsd: 0 }).catch((error: unknown) => error);
      assertAppError(refused, "rate_limited");
      assert.equal(refused.retryAfterSeconds, 30, "room once the 700 of 30 s ago leave");
      clock.advance(30_000);
      const later = await limiter.reserve(user, { tokens: 500, costUsd: 0 });
      assert.equal(later.state.tokens?.remaining, 200);
    });

    test("tpm: many reservations leaving the window together free exactly their amounts, settled or not", async () => {
      const clock = manualClock();
      const limiter = limiterWith({ now: clock.now });
      const user = track(subject({ tpm: 100_000 }));
      // 1,200 entries expire in one check: more than one slice of the script's batched cleanup.
      for (let i = 0; i < 1200; i++) {
        const reservation = await limiter.reserve(user, { tokens: 50, costUsd: 0 });
        if (i % 2 === 0) await limiter.settle(reservation, { tokens: 20, costUsd: 0 });
      }
      clock.advance(30_000);
      await limiter.reserve(user, { tokens: 700, costUsd: 0 });
      const before = await limiter.reserve(user, { tokens: 0, costUsd: 0 });
      assert.equal(before.state.tokens?.remaining, 100_000 - 600 * 20 - 600 * 50 - 700);
      clock.advance(31_000);
      const after = await limiter.reserve(user, { tokens: 0, costUsd: 0 });
      assert.equal(after.state.tokens?.remaining, 100_000 - 700, "only the reservation of 31 s ago is left");
      if (redis) {
        // Nothing of the expired entries is left behind: the 700, the two 0s and the running total.
        const amounts = await redis.hkeys(limitKeys({ userId: user.userId, keyId: null }).userTpmAmounts);
        assert.equal(amounts.filter((field) => !field.startsWith("p:")).length, 4, amounts.slice(0, 10).join(", "));
      }
    });

    test("regression: a window whose expired entries were all 0 tokens still counts in Redis (no -0 HINCRBY)", async () => {
      const clock = manualClock();
      const errors: unknown[] = [];
      const limiter = limiterWith({ now: clock.now, onRedisError: (error) => errors.push(error) });
      const user = track(subject({ tpm: 1000 }));
      const empty = await limiter.reserve(user, { tokens: 0, costUsd: 0 });
      await limiter.settle(empty, { tokens: 0, costUsd: 0 });
      clock.advance(61_000);
      const next = await limiter.reserve(user, { tokens: 400, costUsd: 0 });
      assert.equal(next.state.tokens?.remaining, 600);
      assert.deepEqual(errors, [], "the script ran in Redis, without falling back to memory");
    });

    test("tpm: a request larger than the whole limit is refused with x-should-retry: false", async () => {
      const limiter = limiterWith();
      const user = track(subject({ tpm: 1000 }));
      const refused = await limiter.reserve(user, { tokens: 1001, costUsd: 0 }).catch((error: unknown) => error);
      assertAppError(refused, "rate_limited");
      assert.match(refused.message, /more than the 1000 tokens per minute/);
      assert.equal(refused.headers?.["x-should-retry"], "false");
    });

    test("budget: 20 concurrent reserves against a budget that fits 5 → exactly 5 succeed", async () => {
      const metrics = createMetrics();
      const limiter = limiterWith({ metrics });
      const user = track(subject({ monthlyBudgetUsd: 1 }));
      const { passed, errors } = await settledOutcomes(
        Array.from({ length: 20 }, () => limiter.reserve(user, { tokens: 10, costUsd: 0.2 })),
      );
      assert.equal(passed, 5);
      for (const error of errors) {
        assertAppError(error, "budget_exceeded");
        assert.equal(error.status, 429);
        assert.equal(error.headers?.["x-should-retry"], "false");
        const month = budgetMonthOf(Date.now());
        const untilNextMonth = Math.ceil((month.end.getTime() - Date.now()) / 1000);
        assert.ok(Math.abs((error.retryAfterSeconds ?? 0) - untilNextMonth) <= 2, "retry when the month renews");
      }
      const rejections = await metrics.registry.getSingleMetricAsString("arh_rate_limit_rejections_total");
      assert.match(rejections, /limit="budget"\} 15/);
    });

    test("budget: settle charges the real cost and releases the hold; a second settle does nothing", async () => {
      const limiter = limiterWith();
      const user = track(subject({ monthlyBudgetUsd: 1 }));
      const first = await limiter.reserve(user, { tokens: 0, costUsd: 0.6 });
      const refused = await limiter.reserve(user, { tokens: 0, costUsd: 0.6 }).catch((error: unknown) => error);
      assertAppError(refused, "budget_exceeded");
      await limiter.settle(first, { tokens: 0, costUsd: 0.1 });
      await limiter.settle(first, { tokens: 0, costUsd: 0.1 });
      await limiter.settle(first, { tokens: 0, costUsd: 0.5 });
      // 0.1 spent: 0.9 fits exactly, then nothing more.
      const second = await limiter.reserve(user, { tokens: 0, costUsd: 0.9 });
      const full = await limiter.reserve(user, { tokens: 0, costUsd: 0.000001 }).catch((error: unknown) => error);
      assertAppError(full, "budget_exceeded");
      await limiter.settle(second, { tokens: 0, costUsd: 0.9 });
      const spent = await limiter.reserve(user, { tokens: 0, costUsd: 0 }).catch((error: unknown) => error);
      assertAppError(spent, "budget_exceeded");
      assert.match(spent.message, /monthly budget of \$1\.00 reached/);
    });

    test("budget: a zero budget refuses even free calls; a model without a price is free under a budget", async () => {
      const limiter = limiterWith();
      const none = track(subject({ monthlyBudgetUsd: 0 }));
      assertAppError(
        await limiter.reserve(none, { tokens: 1, costUsd: 0 }).catch((e: unknown) => e),
        "budget_exceeded",
      );
      const some = track(subject({ monthlyBudgetUsd: 0.01 }));
      const reservation = await limiter.reserve(some, { tokens: 1, costUsd: 0 });
      await limiter.settle(reservation, { tokens: 1, costUsd: 0 });
    });

    test("budget: a missing month counter is seeded from the database's spend", async () => {
      const spent = new Map<string, number>();
      const calls: Array<{ userId: string; monthStart: string }> = [];
      const limiter = limiterWith({
        loadMonthSpendUsd: async (userId, monthStart) => {
          calls.push({ userId, monthStart: monthStart.toISOString() });
          return spent.get(userId) ?? 0;
        },
      });
      const user = track(subject({ monthlyBudgetUsd: 1 }));
      spent.set(user.userId, 0.9);
      const tooMuch = await limiter.reserve(user, { tokens: 0, costUsd: 0.2 }).catch((error: unknown) => error);
      assertAppError(tooMuch, "budget_exceeded");
      const fits = await limiter.reserve(user, { tokens: 0, costUsd: 0.05 });
      await limiter.settle(fits, { tokens: 0, costUsd: 0.05 });
      assert.equal(calls.length, 1, "seeded once, then counted in the store");
      assert.equal(calls[0]?.monthStart, budgetMonthOf(Date.now()).start.toISOString());
      assertAppError(
        await limiter.reserve(user, { tokens: 0, costUsd: 0.06 }).catch((e: unknown) => e),
        "budget_exceeded",
      );

      if (redis) {
        // A flush of the counter (Redis restarted without persistence): the next call seeds it again.
        await redis.del(limitKeys(user, budgetMonthOf(Date.now())).budget);
        spent.set(user.userId, 0.97);
        assertAppError(
          await limiter.reserve(user, { tokens: 0, costUsd: 0.04 }).catch((e: unknown) => e),
          "budget_exceeded",
        );
        await limiter.reserve(user, { tokens: 0, costUsd: 0.03 });
        assert.equal(calls.length, 2);

        // Lost between reserve and settle: the settle seeds again and still charges its call (which the
        // database does not have yet: the record is written after the settle).
        const other = track(subject({ monthlyBudgetUsd: 1 }));
        spent.set(other.userId, 0.2);
        const held = await limiter.reserve(other, { tokens: 0, costUsd: 0.5 });
        const budgetKey = limitKeys(other, budgetMonthOf(Date.now())).budget;
        await redis.del(budgetKey);
        await limiter.settle(held, { tokens: 0, costUsd: 0.3 });
        assert.equal(await redis.hget(budgetKey, "spent"), String(0.5e9));
        assert.ok((await redis.pttl(budgetKey)) > 0, "the counter expires after its month");
      }
    });

    test("budget: a reservation never settled (a crashed instance) is released after the hold", async () => {
      const clock = manualClock();
      const limiter = limiterWith({ now: clock.now, reservationHoldMs: 5_000 });
      const user = track(subject({ monthlyBudgetUsd: 1 }));
      await limiter.reserve(user, { tokens: 0, costUsd: 0.8 });
      assertAppError(
        await limiter.reserve(user, { tokens: 0, costUsd: 0.5 }).catch((e: unknown) => e),
        "budget_exceeded",
      );
      clock.advance(5_001);
      await limiter.reserve(user, { tokens: 0, costUsd: 0.5 });
    });

    test("entry: admits, reads the cache, takes the lock and reserves in one go; a hit or a busy lock holds nothing", async () => {
      const limiter = createLimiter({ ...(redis && { redis }), onRedisError: (error) => assert.fail(String(error)) });
      limiters.push(limiter);
      const user = track(subject({ rpm: 10, tpm: 1_000 }));
      const tag = userHashTag(user.userId);
      const cached = `arh:cache:${tag}:entry-test-hit`;
      const missing = `arh:cache:${tag}:entry-test-miss`;
      const lockKey = `arh:flight:${tag}:entry-test`;
      cleanups.push(cached, lockKey);
      await redis?.set(cached, "the cached answer", "PX", 60_000);
      const estimate = { tokens: 100, costUsd: 0 };

      const hit = await limiter.enter(user, { estimate, lookup: cached });
      assert.ok(hit.ok);
      assert.equal(hit.lookedUp, backend !== "memory", "only Redis reads the cache in the same round trip");
      if (backend !== "memory") {
        assert.equal(hit.cached, "the cached answer");
        assert.equal(hit.reservation, undefined, "a hit holds nothing");
        assert.equal(hit.state.tokens?.remaining, 1_000);
      }
      assert.equal(hit.state.requests?.remaining, 9, "a hit counts against rpm");

      const lock = { key: lockKey, token: "mine", ttlMs: 5_000 };
      const leader = await limiter.enter(user, { estimate, lookup: missing, lock });
      assert.ok(leader.ok);
      assert.equal(leader.cached, undefined);
      assert.ok(leader.reservation, "a miss holds its call's tokens");
      // In memory the "hit" above was not looked up, so it held its tokens too.
      assert.equal(leader.state.tokens?.remaining, backend === "memory" ? 800 : 900);
      assert.equal(leader.lock, backend === "memory" ? "untried" : "taken");
      if (redis) assert.equal(await redis.get(lockKey), "mine");

      const waiter = await limiter.enter(user, { estimate, lookup: missing, lock: { ...lock, token: "theirs" } });
      assert.ok(waiter.ok);
      if (backend !== "memory") {
        assert.equal(waiter.lock, "busy");
        assert.equal(waiter.reservation, undefined, "waiting for another call holds nothing");
        assert.equal(waiter.state.tokens?.remaining, 900);
      }
      assert.equal(waiter.state.requests?.remaining, 7);
    });

    test("entry: a refusal by tpm leaves no lock behind; a refusal by rpm does nothing else", async () => {
      const limiter = createLimiter({ ...(redis && { redis }), onRedisError: (error) => assert.fail(String(error)) });
      limiters.push(limiter);
      const user = track(subject({ rpm: 2, tpm: 100 }));
      const lockKey = `arh:flight:${userHashTag(user.userId)}:entry-refused`;
      cleanups.push(lockKey);
      const lock = { key: lockKey, token: "mine", ttlMs: 5_000 };
      const tooMuch = await limiter.enter(user, { estimate: { tokens: 500, costUsd: 0 }, lock });
      assert.ok(!tooMuch.ok);
      assert.equal(tooMuch.refusal.limit, "tpm");
      if (redis) assert.equal(await redis.exists(lockKey), 0, "the lock is released with the refusal");
      assert.equal(tooMuch.refusal.state.requests?.remaining, 1, "the refused request still counted against rpm");

      await limiter.enter(user, {});
      const overRpm = await limiter.enter(user, { estimate: { tokens: 10, costUsd: 0 }, lock });
      assert.ok(!overRpm.ok);
      assert.equal(overRpm.refusal.limit, "rpm");
      if (redis) assert.equal(await redis.exists(lockKey), 0, "no lock taken past an rpm refusal");
      assert.equal(overRpm.refusal.state.tokens?.remaining, 100, "nothing reserved past an rpm refusal");
    });

    test("entry: of 20 identical requests entering together, one takes the lock and only it holds tokens", async () => {
      const limiter = createLimiter({ ...(redis && { redis }), onRedisError: (error) => assert.fail(String(error)) });
      limiters.push(limiter);
      const user = track(subject({ tpm: 10_000 }));
      const lockKey = `arh:flight:${userHashTag(user.userId)}:entry-race`;
      cleanups.push(lockKey);
      const entries = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          limiter.enter(user, {
            estimate: { tokens: 100, costUsd: 0 },
            lock: { key: lockKey, token: `t${i}`, ttlMs: 5_000 },
          }),
        ),
      );
      const through = entries.filter((entry) => entry.ok);
      assert.equal(through.length, 20);
      if (backend === "memory") return;
      assert.equal(through.filter((entry) => entry.lock === "taken").length, 1);
      assert.equal(through.filter((entry) => entry.reservation).length, 1);
      const after = await limiter.peek(user);
      assert.equal(after.tokens?.remaining, 9_900, "only the leader's tokens are held");
    });

    test("tpm and budget together: a refusal by one counts nothing against the other", async () => {
      const limiter = limiterWith();
      const user = track(subject({ tpm: 100, monthlyBudgetUsd: 1 }));
      assertAppError(
        await limiter.reserve(user, { tokens: 10, costUsd: 2 }).catch((e: unknown) => e),
        "budget_exceeded",
      );
      const reservation = await limiter.reserve(user, { tokens: 100, costUsd: 0.5 });
      assert.equal(reservation.state.tokens?.remaining, 0, "the refused call held no tokens");
      assertAppError(await limiter.reserve(user, { tokens: 1, costUsd: 0.1 }).catch((e: unknown) => e), "rate_limited");
      // The tpm refusal held no budget: 0.5 is still free.
      await limiter.settle(reservation, { tokens: 0, costUsd: 0 });
      await limiter.reserve(user, { tokens: 1, costUsd: 1 });
    });
  });
}

describe("limiter with Redis failing", () => {
  test("an unreachable Redis falls back to memory, with the same limits, and reports the error", async () => {
    // Nothing listens on port 1: every command fails at once (no offline queue), as during an outage.
    const broken = new Redis("redis://127.0.0.1:1", {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    broken.on("error", () => {});
    const reported: unknown[] = [];
    const limiter = answering(createLimiter({ redis: broken, onRedisError: (error) => reported.push(error) }));
    try {
      assert.equal(limiter.kind, "redis");
      const user = subject({ rpm: 3, tpm: 100, monthlyBudgetUsd: 1 });
      const { passed } = await settledOutcomes(Array.from({ length: 5 }, () => limiter.admitRequest(user)));
      assert.equal(passed, 3, "memory still enforces the limit");
      const reservation = await limiter.reserve(user, { tokens: 50, costUsd: 0.5 });
      await limiter.settle(reservation, { tokens: 10, costUsd: 0.1 });
      assert.ok(reported.length >= 1, "the failure was reported");
      assert.ok(reported.length <= 2, "and not once per call");
    } finally {
      await limiter.close();
      broken.disconnect();
    }
  });

  test("a settle Redis refuses is retried and charged exactly once", async () => {
    const redis = await connectRedis();
    const observer = await connectRedis();
    redis.on("error", () => {});
    const limiter = answering(createLimiter({ redis, onRedisError: () => {} }));
    const user = subject({ monthlyBudgetUsd: 1, tpm: 1000 });
    const budgetKey = limitKeys(user, budgetMonthOf(Date.now())).budget;
    try {
      const reservation = await limiter.reserve(user, { tokens: 500, costUsd: 0.5 });
      const ended = new Promise((resolve) => redis.once("end", resolve));
      redis.disconnect();
      await ended;
      await limiter.settle(reservation, { tokens: 20, costUsd: 0.25 });
      assert.equal(await observer.hget(budgetKey, "spent"), "0", "not charged while Redis is away");
      await redis.connect();
      const deadline = Date.now() + 5_000;
      while ((await observer.hget(budgetKey, "spent")) === "0" && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(await observer.hget(budgetKey, "spent"), String(0.25e9), "charged once Redis is back");
      // Settling again (a retried write) changes nothing, nor does any retry still pending: close() runs them all.
      await limiter.settle(reservation, { tokens: 20, costUsd: 0.25 });
      await limiter.close();
      assert.equal(await observer.hget(budgetKey, "spent"), String(0.25e9));
      const tokens = await observer.hget(limitKeys(user).userTpmAmounts, "total");
      assert.equal(tokens, "20", "the token reservation was settled to the real usage");
    } finally {
      await limiter.close();
      await removeKeys(observer, [user]);
      await observer.quit();
      await redis.quit().catch(() => redis.disconnect());
    }
  });
});

describe("rate-limit headers", () => {
  test("durations are written the way OpenAI writes them", () => {
    assert.equal(formatResetDuration(0), "0s");
    assert.equal(formatResetDuration(250), "250ms");
    assert.equal(formatResetDuration(0.2), "1ms");
    assert.equal(formatResetDuration(6_000), "6s");
    assert.equal(formatResetDuration(8_640), "8.64s");
    assert.equal(formatResetDuration(60_000), "1m0s");
    assert.equal(formatResetDuration(86_400), "1m26.4s");
    assert.equal(formatResetDuration(3_723_000), "1h2m3s");
  });

  test("both sets of x-ratelimit-* headers, only for the windows that exist", () => {
    assert.deepEqual(
      rateLimitHeaders({
        requests: { limit: 60, remaining: 59, resetMs: 1_000 },
        tokens: { limit: 150_000, remaining: 149_984, resetMs: 6 },
      }),
      {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149984",
        "x-ratelimit-reset-tokens": "6ms",
      },
    );
    assert.deepEqual(rateLimitHeaders({}), {});
  });
});

describe("estimates", () => {
  test("a prompt's size: UTF-8 bytes of its text, tools and schema; images and token ids as fixed tokens", () => {
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: [{ type: "text", text: "héllo" }], name: "ada" },
    ];
    const size = promptSize({ messages, tools: [{ type: "function" }] });
    assert.equal(size.messages, 2);
    assert.equal(size.bytes, 9 + 6 + 3 + JSON.stringify([{ type: "function" }]).length);
    assert.equal(size.fixedTokens, requestAllowanceTokens + 2 * messageAllowanceTokens);
    assert.equal(size.measured, true);

    const image = promptSize({
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] }],
    });
    assert.equal(image.bytes, 0, "an image is estimated, not its base64");
    assert.equal(image.fixedTokens, requestAllowanceTokens + messageAllowanceTokens + nonTextPartTokens);
    assert.equal(image.measured, false, "a call with an image teaches no ratio");

    assert.deepEqual(promptSize({ input: "hello world" }), { bytes: 11, messages: 0, fixedTokens: 0, measured: true });
    assert.equal(promptSize({ input: [[1, 2, 3], [4]] }).fixedTokens, 4, "token ids count as themselves");
    assert.equal(promptSize({ input: messages }).messages, 2, "native chat input counts as messages");
  });

  test("at one token a byte the bound is above what OpenAI's tokenizer counts, whatever the text", () => {
    const texts = [
      "Hello there, how are you today?",
      "שלום עולם",
      "日本語のテキスト",
      '{"a": [1, 2, 3]}',
      "x".repeat(5000),
    ];
    for (const text of texts) {
      const messages = [{ role: "user" as const, content: text }];
      const bound = promptTokenBound(promptSize({ messages }), unseenModelTokensPerByte);
      assert.ok(bound >= countPromptTokens(messages), `${text.slice(0, 20)}: ${bound}`);
    }
  });

  test("what a call teaches: its reported tokens per byte beyond the allowances; nothing from small prompts", () => {
    const big = promptSize({ messages: [{ role: "user", content: "a".repeat(3000) }] });
    assert.equal(observedTokensPerByte(big, 1000 + big.fixedTokens), 1000 / 3000);
    // The bound at the learned ratio gives back exactly what was reported.
    assert.equal(promptTokenBound(big, 1000 / 3000), 1000 + big.fixedTokens);
    const small = promptSize({ messages: [{ role: "user", content: "hi" }] });
    assert.equal(observedTokensPerByte(small, 50), undefined);
  });

  test("worst-case cost prices the max output; an unknown model costs 0", () => {
    const cost = worstCaseCostUsd("gpt-4o-mini", 1000, 1000);
    // gpt-4o-mini: $0.15 per million input tokens, $0.60 per million output tokens.
    assert.ok(Math.abs(cost - 0.00075) < 1e-9, String(cost));
    assert.equal(worstCaseCostUsd("my-own-model", 1000, 1000), 0);
  });
});

/** Resolves once `condition` holds; fails the test after `ms`. Polls, since the condition is another's state. */
async function waitFor(condition: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail("the condition did not hold in time");
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("learned tokens per byte", () => {
  let redis: Redis;
  before(() => {
    redis = new Redis(redisUrl);
  });
  after(() => redis.quit());

  test("a model not seen yet reserves one token a byte; learning only ever raises a ratio", () => {
    const ratios = createTokenRatios();
    assert.equal(ratios.tokensPerByte("m"), unseenModelTokensPerByte);
    ratios.learn("m", 0.3);
    assert.equal(ratios.tokensPerByte("m"), 0.3 * ratioHeadroom);
    ratios.learn("m", 0.2);
    assert.equal(ratios.tokensPerByte("m"), 0.3 * ratioHeadroom, "a lower observation changes nothing");
    ratios.learn("m", 0.4);
    assert.equal(ratios.tokensPerByte("m"), 0.4 * ratioHeadroom);
    ratios.learn("m", 0);
    ratios.learn("other", Number.NaN);
    assert.equal(ratios.tokensPerByte("other"), unseenModelTokensPerByte, "no usage teaches nothing");
    ratios.learn("absurd", 1e9);
    assert.equal(ratios.tokensPerByte("absurd"), 4 * ratioHeadroom, "one absurd report is capped");
    ratios.close();
  });

  test("a ratio learned by one instance reaches another through Redis; another upstream's stays apart", async () => {
    const upstream = `http://test-${randomBytes(6).toString("hex")}`;
    const a = createTokenRatios({ redis, upstream, refreshMs: 20 });
    const b = createTokenRatios({ redis, upstream, refreshMs: 20 });
    const other = createTokenRatios({ redis, upstream: `${upstream}-other`, refreshMs: 20 });
    try {
      a.learn("gpt-4o-mini", 0.31);
      await waitFor(() => b.tokensPerByte("gpt-4o-mini") === 0.31 * ratioHeadroom);
      b.learn("gpt-4o-mini", 0.2);
      a.learn("gpt-4o-mini", 0.35);
      await waitFor(() => b.tokensPerByte("gpt-4o-mini") === 0.35 * ratioHeadroom);
      assert.equal(other.tokensPerByte("gpt-4o-mini"), unseenModelTokensPerByte);
    } finally {
      a.close();
      b.close();
      other.close();
    }
  });
});
