import type { Redis } from "ioredis";
import { randomToken } from "../ids.ts";
import type { Metrics } from "../observability/metrics.ts";
import {
  type BudgetMonth,
  budgetMonthOf,
  type LimitState,
  type LimitStore,
  type ScopeLimits,
  type SettleInput,
} from "./limit-store.ts";
import { throttledReports } from "../observability/throttled-log.ts";
import { withTimeout } from "../timeout.ts";
import { nanoPerUsd, toNano } from "../usd.ts";
import { createMemoryLimitStore } from "./memory-limit-store.ts";
import {
  type Admission,
  BudgetUnavailableError,
  type LimitName,
  type LimitSubject,
  type Reservation,
  type ReserveResult,
} from "./outcomes.ts";
import { createRedisLimitStore } from "./redis-limit-store.ts";

export type { LimitState, ScopeKind, WindowState } from "./limit-store.ts";
export {
  type Admission,
  BudgetUnavailableError,
  type LimitName,
  type LimitRefusal,
  LimitRefusedError,
  type LimitSubject,
  limitSubjectOf,
  type Reservation,
  type ReserveResult,
} from "./outcomes.ts";

export interface Limiter {
  readonly kind: "redis" | "memory";
  /** Counts one request against rpm (cache hits too): its windows afterwards, or why it is refused. */
  admitRequest(subject: LimitSubject): Promise<Admission>;
  /**
   * Before an upstream call: reserves estimated tokens against tpm and the worst-case cost against the monthly
   * budget, atomically; or says which of them refused. Throws BudgetUnavailableError when the month's spend cannot
   * be read.
   */
  reserve(subject: LimitSubject, estimate: { tokens: number; costUsd: number }): Promise<ReserveResult>;
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
const admittedWithoutLimit: Admission = Object.freeze({ ok: true, state: {} });
const nothingReserved: ReserveResult = Object.freeze({ ok: true, reservation: noReservation });
const errorReportIntervalMs = 10_000;
const settleRetryIntervalMs = 1_000;
const maxPendingSettles = 10_000;

export function createLimiter(options: CreateLimiterOptions = {}): Limiter {
  const now = options.now ?? Date.now;
  const windowMs = options.windowMs ?? 60_000;
  const holdMs = options.reservationHoldMs ?? 3_600_000;
  const redisTimeoutMs = options.redisTimeoutMs ?? 1_000;
  const redisTimeoutMessage = `Redis did not answer within ${redisTimeoutMs} ms`;

  const loadMonthSpendNano = async (userId: string, month: BudgetMonth) => {
    if (!options.loadMonthSpendUsd) return 0;
    try {
      return toNano(await options.loadMonthSpendUsd(userId, month.start));
    } catch (error) {
      throw new BudgetUnavailableError("the budget could not be checked: the month's spend could not be read", {
        cause: error,
      });
    }
  };
  const memory = createMemoryLimitStore({ now, windowMs, holdMs, loadMonthSpendNano });
  const redisStore = options.redis
    ? createRedisLimitStore({ redis: options.redis, now: options.now, windowMs, holdMs, loadMonthSpendNano })
    : undefined;

  const held = new WeakMap<Reservation, Held>();
  const pendingSettles: PendingSettle[] = [];
  // At most one report per 10 s while Redis is away; the operations fall back to memory meanwhile.
  const redisErrors = throttledReports((error) => options.onRedisError?.(error), { intervalMs: errorReportIntervalMs });
  const reportRedisError = (error: unknown) => redisErrors.failed(error);

  /** Redis when it answers; memory when there is none or it fails, so an outage never becomes a 500. */
  async function onStore<T>(operation: (store: LimitStore) => Promise<T>): Promise<{ value: T; store: LimitStore }> {
    if (redisStore) {
      try {
        return {
          value: await withTimeout(operation(redisStore), redisTimeoutMs, redisTimeoutMessage),
          store: redisStore,
        };
      } catch (error) {
        // The database failed, not Redis: memory would fail the same way.
        if (error instanceof BudgetUnavailableError) throw error;
        reportRedisError(error);
      }
    }
    return { value: await operation(memory), store: memory };
  }

  function reject(limit: LimitName) {
    options.metrics?.rateLimitRejections.inc({ limit });
  }

  async function settleNow(store: LimitStore, input: SettleInput, reservedAt: number) {
    try {
      await withTimeout(store.settle(input), redisTimeoutMs, redisTimeoutMessage);
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
        await withTimeout(redisStore.settle(pending.input), redisTimeoutMs, redisTimeoutMessage);
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
      if (limits.userRpm <= 0 && limits.keyRpm <= 0) return admittedWithoutLimit;
      const { value: outcome } = await onStore((store) => store.admit(limits, newEntryId(), false));
      // The store's own answer is already an admission: no second object per request.
      if (outcome.ok) return outcome;
      reject("rpm");
      return {
        ok: false,
        refusal: {
          limit: "rpm",
          scope: outcome.scope,
          allowed: outcome.scope === "key" ? limits.keyRpm : limits.userRpm,
          retryAfterMs: outcome.retryAfterMs,
          state: outcome.state,
        },
      };
    },

    async reserve(subject, estimate) {
      const limits = scopeLimits(subject);
      const budgetUsd = subject.monthlyBudgetUsd;
      const hasBudget = budgetUsd !== null && budgetUsd !== undefined;
      if (limits.userTpm <= 0 && limits.keyTpm <= 0 && !hasBudget) return nothingReserved;

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
        return { ok: true, reservation };
      }
      if (outcome.limit === "budget") {
        reject("budget");
        return {
          ok: false,
          refusal: {
            limit: "budget",
            budgetUsd: budgetUsd ?? 0,
            committedUsd: outcome.committedNano / nanoPerUsd,
            costUsd: estimate.costUsd,
            renewsAt: month.end,
            retryAfterMs: month.end.getTime() - at,
            state: outcome.state,
          },
        };
      }
      reject("tpm");
      return {
        ok: false,
        refusal: {
          limit: "tpm",
          scope: outcome.scope,
          allowed: outcome.scope === "key" ? limits.keyTpm : limits.userTpm,
          tokens,
          tooLarge: outcome.tooLarge,
          retryAfterMs: outcome.retryAfterMs,
          state: outcome.state,
        },
      };
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
