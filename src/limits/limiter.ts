import type { Redis } from "ioredis";
import type { ApiKeyRecord, UserRecord } from "../db/types.ts";
import { AppError } from "../errors.ts";
import { randomToken } from "../ids.ts";
import type { Metrics } from "../observability/metrics.ts";
import {
  type BudgetMonth,
  budgetMonthOf,
  type LimitState,
  type LimitStore,
  nanoPerUsd,
  type ScopeKind,
  type ScopeLimits,
  type SettleInput,
  toNano,
} from "./limit-store.ts";
import { createMemoryLimitStore } from "./memory-limit-store.ts";
import { rateLimitHeaders } from "./rate-limit-headers.ts";
import { createRedisLimitStore } from "./redis-limit-store.ts";

export type { LimitState, WindowState } from "./limit-store.ts";
export { formatResetDuration, rateLimitHeaders } from "./rate-limit-headers.ts";

/** Who a request counts against, with the limits that apply (null: no such limit). */
export interface LimitSubject {
  userId: string;
  keyId: string | null;
  rpm: number | null;
  tpm: number | null;
  monthlyBudgetUsd: number | null;
  /** The key's own limits, applied on top of the user's (both must admit a request). */
  keyRpm?: number | null;
  keyTpm?: number | null;
}

/** What reserve() held; pass it to settle() once the call is over. */
export interface Reservation {
  /** The windows after the reservation: for x-ratelimit-* headers on the answer. */
  readonly state: LimitState;
}

export interface Limiter {
  readonly kind: "redis" | "memory";
  /**
   * Counts one request against rpm (cache hits too). Throws AppError("rate_limited") with retryAfterSeconds and
   * headers (x-ratelimit-*) when over. Returns the state for x-ratelimit-* headers on success.
   */
  admitRequest(subject: LimitSubject): Promise<LimitState>;
  /**
   * Before an upstream call: reserves estimated tokens against tpm and the worst-case cost against the monthly
   * budget, atomically. Throws AppError("rate_limited") (tpm) or AppError("budget_exceeded") when it does not fit.
   */
  reserve(subject: LimitSubject, estimate: { tokens: number; costUsd: number }): Promise<Reservation>;
  /**
   * After the call: replaces the reservation with what was really used (tokens, cost). Idempotent per reservation
   * (a second settle does nothing). A failed call settles with what it used (often 0). Never throws: when Redis
   * refuses, the settle is retried in the background (the scripts make a repeat harmless).
   */
  settle(reservation: Reservation, actual: { tokens: number; costUsd: number }): Promise<void>;
  /** The windows as they stand, counting nothing (for GET /me). */
  peek(subject: LimitSubject): Promise<LimitState>;
  /** Stops timers and tries once more to settle what Redis refused. */
  close(): Promise<void>;
}

export type LimitName = "rpm" | "tpm" | "budget";

export interface CreateLimiterOptions {
  /** Shared limits across instances; without it, limits hold in this process only. */
  redis?: Redis;
  /** Injected clock (tests). Default: Date.now in memory, Redis's own clock (TIME) in the scripts. */
  now?: () => number;
  /** A Redis failure; the operation fell back to memory. Reported at most once per 10 s. */
  onRedisError?: (error: unknown) => void;
  /** The user's spend since `monthStart` (UTC, to the month's end) from the database: seeds a missing budget. */
  loadMonthSpendUsd?: (userId: string, monthStart: Date) => Promise<number>;
  /** Counts refusals in arh_rate_limit_rejections_total{limit}. */
  metrics?: Pick<Metrics, "rateLimitRejections">;
  /** Window of rpm and tpm. Default 60 000 ms. */
  windowMs?: number;
  /** How long an unsettled budget reservation holds its amount (a crashed instance's calls). Default 1 h. */
  reservationHoldMs?: number;
  /** A Redis call slower than this falls back to memory. Default 1000 ms. */
  redisTimeoutMs?: number;
}

/** The subject of a caller: the user's limits and, when it has its own, the key's. */
export function limitSubjectOf(user: UserRecord, key: ApiKeyRecord | null): LimitSubject {
  return {
    userId: user.id,
    keyId: key?.id ?? null,
    rpm: user.rpm,
    tpm: user.tpm,
    monthlyBudgetUsd: user.monthlyBudgetUsd,
    keyRpm: key?.rpm ?? null,
    keyTpm: key?.tpm ?? null,
  };
}

/** A failure of the database while seeding a budget: not a Redis problem, so no fallback to memory. */
class SpendLoadError extends Error {
  override name = "SpendLoadError";
}

interface Held {
  store: LimitStore;
  input: Omit<SettleInput, "tokens" | "costNano">;
  reservedAt: number;
  settled: boolean;
}

interface PendingSettle {
  input: SettleInput;
  reservedAt: number;
}

const noReservation: Reservation = Object.freeze({ state: {} });
const errorReportIntervalMs = 10_000;
const settleRetryIntervalMs = 1_000;
const maxPendingSettles = 10_000;

export function createLimiter(options: CreateLimiterOptions = {}): Limiter {
  const now = options.now ?? Date.now;
  const windowMs = options.windowMs ?? 60_000;
  const holdMs = options.reservationHoldMs ?? 3_600_000;
  const redisTimeoutMs = options.redisTimeoutMs ?? 1_000;

  const loadMonthSpendNano = async (userId: string, month: BudgetMonth) => {
    if (!options.loadMonthSpendUsd) return 0;
    try {
      return toNano(await options.loadMonthSpendUsd(userId, month.start));
    } catch (error) {
      throw new SpendLoadError("could not read the month's spend from the database", { cause: error });
    }
  };
  const memory = createMemoryLimitStore({ now, windowMs, holdMs, loadMonthSpendNano });
  const redisStore = options.redis
    ? createRedisLimitStore({ redis: options.redis, now: options.now, windowMs, holdMs, loadMonthSpendNano })
    : undefined;

  const held = new WeakMap<Reservation, Held>();
  const pendingSettles: PendingSettle[] = [];
  let lastErrorReport = -Infinity;

  function reportRedisError(error: unknown) {
    const at = Date.now();
    if (at - lastErrorReport < errorReportIntervalMs) return;
    lastErrorReport = at;
    options.onRedisError?.(error);
  }

  /** Redis when it answers; memory when there is none or it fails, so an outage never becomes a 500. */
  async function onStore<T>(operation: (store: LimitStore) => Promise<T>): Promise<{ value: T; store: LimitStore }> {
    try {
      if (redisStore) {
        try {
          return { value: await withTimeout(operation(redisStore), redisTimeoutMs), store: redisStore };
        } catch (error) {
          if (error instanceof SpendLoadError) throw error;
          reportRedisError(error);
        }
      }
      return { value: await operation(memory), store: memory };
    } catch (error) {
      if (error instanceof SpendLoadError) {
        throw new AppError("service_unavailable", "the budget could not be checked; try again shortly", {
          retryAfterSeconds: 1,
          cause: error,
        });
      }
      throw error;
    }
  }

  function reject(limit: LimitName) {
    options.metrics?.rateLimitRejections.inc({ limit });
  }

  async function settleNow(store: LimitStore, input: SettleInput, reservedAt: number) {
    try {
      await withTimeout(store.settle(input), redisTimeoutMs);
    } catch (error) {
      if (store.kind !== "redis") return;
      reportRedisError(error);
      if (pendingSettles.length < maxPendingSettles) pendingSettles.push({ input, reservedAt });
    }
  }

  /** Settles that Redis refused, retried until they land or their hold has lapsed (then nothing is held). */
  async function retryPendingSettles() {
    if (!redisStore || pendingSettles.length === 0) return;
    const batch = pendingSettles.splice(0);
    for (const [index, pending] of batch.entries()) {
      if (now() - pending.reservedAt > holdMs) continue;
      try {
        await withTimeout(redisStore.settle(pending.input), redisTimeoutMs);
      } catch (error) {
        reportRedisError(error);
        pendingSettles.push(...batch.slice(index));
        return;
      }
    }
  }
  let retrying: Promise<void> | undefined;
  const retryTimer = setInterval(() => {
    retrying ??= retryPendingSettles().finally(() => {
      retrying = undefined;
    });
  }, settleRetryIntervalMs);
  retryTimer.unref();

  return {
    kind: redisStore ? "redis" : "memory",

    async admitRequest(subject) {
      const limits = scopeLimits(subject);
      if (limits.userRpm <= 0 && limits.keyRpm <= 0) return {};
      const { value: outcome } = await onStore((store) => store.admit(limits, newEntryId(), false));
      if (outcome.ok) return outcome.state;
      reject("rpm");
      const limit = outcome.scope === "key" ? limits.keyRpm : limits.userRpm;
      throw new AppError(
        "rate_limited",
        `rate limit reached: ${limit} requests per minute for this ${scopeName(outcome.scope)}; ` +
          `retry in ${retryAfterSeconds(outcome.retryAfterMs)} s`,
        refusal(outcome.state, outcome.retryAfterMs, false),
      );
    },

    async reserve(subject, estimate) {
      const limits = scopeLimits(subject);
      const budgetUsd = subject.monthlyBudgetUsd;
      const hasBudget = budgetUsd !== null && budgetUsd !== undefined;
      if (limits.userTpm <= 0 && limits.keyTpm <= 0 && !hasBudget) return noReservation;

      const at = now();
      const month = budgetMonthOf(at);
      const tokens = Math.max(0, Math.ceil(estimate.tokens));
      const id = newEntryId();
      const budget = hasBudget ? { month, limitNano: toNano(budgetUsd), costNano: toNano(estimate.costUsd) } : null;
      const { value: outcome, store } = await onStore((s) => s.reserve({ limits, id, tokens, budget }));

      if (outcome.ok) {
        const reservation: Reservation = { state: outcome.state };
        held.set(reservation, {
          store,
          input: { limits, id, budgetMonth: budget ? month : null },
          reservedAt: at,
          settled: false,
        });
        return reservation;
      }
      if (outcome.limit === "budget") {
        reject("budget");
        const waitMs = month.end.getTime() - at;
        throw new AppError(
          "budget_exceeded",
          `monthly budget of ${usd(budgetUsd ?? 0)} reached (${usd(outcome.committedNano / nanoPerUsd)} spent or ` +
            `held by calls in flight; this call may cost up to ${usd(estimate.costUsd)}); ` +
            `it renews on ${month.end.toISOString().slice(0, 10)}`,
          refusal(outcome.state, waitMs, true),
        );
      }
      reject("tpm");
      const limit = outcome.scope === "key" ? limits.keyTpm : limits.userTpm;
      if (outcome.tooLarge) {
        throw new AppError(
          "rate_limited",
          `this request may use up to ${tokens} tokens (prompt and max output), more than the ${limit} tokens per ` +
            `minute of this ${scopeName(outcome.scope)}; send a shorter input or a lower max_tokens`,
          refusal(outcome.state, outcome.retryAfterMs, true),
        );
      }
      throw new AppError(
        "rate_limited",
        `token rate limit reached: this request may use up to ${tokens} tokens and the ${limit} tokens per minute ` +
          `of this ${scopeName(outcome.scope)} are taken; retry in ${retryAfterSeconds(outcome.retryAfterMs)} s`,
        refusal(outcome.state, outcome.retryAfterMs, false),
      );
    },

    async settle(reservation, actual) {
      const entry = held.get(reservation);
      if (!entry || entry.settled) return;
      entry.settled = true;
      const input: SettleInput = {
        ...entry.input,
        tokens: Math.max(0, Math.round(actual.tokens)),
        costNano: toNano(actual.costUsd),
      };
      await settleNow(entry.store, input, entry.reservedAt);
    },

    async peek(subject) {
      const limits = scopeLimits(subject);
      if (limits.userRpm <= 0 && limits.keyRpm <= 0 && limits.userTpm <= 0 && limits.keyTpm <= 0) return {};
      const { value: outcome } = await onStore((store) => store.admit(limits, newEntryId(), true));
      return outcome.state;
    },

    async close() {
      clearInterval(retryTimer);
      await retrying;
      await retryPendingSettles();
      memory.close();
      redisStore?.close();
    },
  };
}

function scopeLimits(subject: LimitSubject): ScopeLimits {
  const positive = (value: number | null | undefined) => (value && value > 0 ? Math.floor(value) : 0);
  const keyRpm = subject.keyId ? positive(subject.keyRpm) : 0;
  const keyTpm = subject.keyId ? positive(subject.keyTpm) : 0;
  return {
    userId: subject.userId,
    keyId: keyRpm || keyTpm ? subject.keyId : null,
    userRpm: positive(subject.rpm),
    keyRpm,
    userTpm: positive(subject.tpm),
    keyTpm,
  };
}

/** Unique enough for a log entry (~72 random bits) and short: it is stored once per request per window. */
function newEntryId(): string {
  return randomToken(14);
}

const scopeName = (scope: ScopeKind) => (scope === "key" ? "API key" : "user");

const retryAfterSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/**
 * Retry-After (whole seconds, via the error), retry-after-ms (which OpenAI's SDKs prefer), the x-ratelimit-* set,
 * and x-should-retry: false when waiting cannot help soon (a request larger than the limit, a budget spent until
 * next month), so the SDKs do not hammer.
 */
function refusal(state: LimitState, waitMs: number, hopeless: boolean) {
  const headers: Record<string, string> = {
    ...rateLimitHeaders(state),
    "retry-after-ms": String(Math.max(0, Math.ceil(waitMs))),
  };
  if (hopeless || waitMs > 60_000) headers["x-should-retry"] = "false";
  return { retryAfterSeconds: retryAfterSeconds(waitMs), headers };
}

function usd(amount: number): string {
  return `$${amount >= 1 ? amount.toFixed(2) : Number(amount.toPrecision(3))}`;
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
