import type { RedisClient } from "../redis-connection.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { BudgetMonth, EnterInput, LimitState, LimitStore, SettleInput } from "./limit-store.ts";
import { throttledReports } from "../observability/throttled-log.ts";
import { withTimeout } from "../timeout.ts";
import { toNano } from "../usd.ts";
import { createMemoryLimitStore } from "./memory-limit-store.ts";
import {
  type Admission,
  BudgetUnavailableError,
  type Entry,
  type EntryRequest,
  type LimitRefusal,
  type LimitSubject,
  type Reservation,
  type ReserveResult,
} from "./outcomes.ts";
import { createRedisLimitStore } from "./redis-limit-store.ts";
import { type Holding, holdingFor, newEntryId, reserveRefusal, rpmRefusal, scopeLimits } from "./refusals.ts";

export type { LimitState, ScopeKind, WindowState } from "./limit-store.ts";
export {
  type Admission,
  BudgetUnavailableError,
  type Entry,
  type EntryRequest,
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
   * The one round trip before an upstream call: admits the request, and with Redis also reads the cache entry and
   * takes the coalescing lock it is given, then reserves the estimate; each only if the one before let it through.
   * A cache hit or a lock held by another reserves nothing.
   */
  enter(subject: LimitSubject, request: EntryRequest): Promise<Entry>;
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
  redis?: RedisClient;
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
const untriedEntry: Entry = Object.freeze({
  ok: true,
  state: {},
  reservation: noReservation,
  lookedUp: false,
  cached: undefined,
  lock: "untried",
});
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

  function hold(store: LimitStore, state: LimitState, holding: Holding): Reservation {
    const reservation: Reservation = { state };
    held.set(reservation, {
      store,
      input: { limits: holding.limits, id: holding.input.id, budgetMonth: holding.input.budget ? holding.month : null },
      reservedAt: holding.at,
      settled: false,
    });
    return reservation;
  }

  /** A refusal, counted in arh_rate_limit_rejections_total{limit}. */
  function refused(refusal: LimitRefusal): { ok: false; refusal: LimitRefusal } {
    options.metrics?.rateLimitRejections.inc({ limit: refusal.limit });
    return { ok: false, refusal };
  }

  return {
    kind: redisStore ? "redis" : "memory",

    async admitRequest(subject) {
      const limits = scopeLimits(subject);
      if (limits.userRpm <= 0 && limits.keyRpm <= 0) return admittedWithoutLimit;
      const { value: outcome } = await onStore((store) => store.admit(limits, newEntryId(), false));
      // The store's own answer is already an admission: no second object per request.
      if (outcome.ok) return outcome;
      return refused(rpmRefusal(limits, outcome));
    },

    async enter(subject, request) {
      const limits = scopeLimits(subject);
      const holding = request.estimate ? holdingFor(subject, limits, request.estimate, now()) : undefined;
      if (!holding && !request.lookup && !request.lock && limits.userRpm <= 0 && limits.keyRpm <= 0) {
        return untriedEntry;
      }
      const input: EnterInput = {
        limits,
        requestId: newEntryId(),
        lookup: request.lookup,
        lock: request.lock,
        reserve: holding?.input,
      };
      const { value: outcome, store } = await onStore((s) => s.enter(input));
      if (!outcome.ok) {
        if (outcome.limit === "rpm") return refused(rpmRefusal(limits, outcome));
        return refused(reserveRefusal(subject, limits, holding, outcome, now()));
      }
      let reservation: Reservation | undefined;
      if (outcome.reserved && holding) reservation = hold(store, outcome.state, holding);
      else if (request.estimate && !holding) reservation = noReservation;
      return {
        ok: true,
        state: outcome.state,
        reservation,
        lookedUp: store.kind === "redis" && request.lookup !== undefined,
        cached: outcome.cached,
        lock: outcome.lock,
      };
    },

    async reserve(subject, estimate) {
      const limits = scopeLimits(subject);
      const holding = holdingFor(subject, limits, estimate, now());
      if (!holding) return nothingReserved;
      const { value: outcome, store } = await onStore((s) => s.reserve({ limits, ...holding.input }));
      if (outcome.ok) return { ok: true, reservation: hold(store, outcome.state, holding) };
      return refused(reserveRefusal(subject, limits, holding, outcome, now()));
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
