/**
 * The contract between the limiter (src/limits/limiter.ts: policy, errors, fallback) and its two stores: Redis
 * (shared by every instance, Lua scripts) and memory (one process). Both implement exactly the same arithmetic;
 * the limiter turns their plain answers into admissions, reservations and refusals (values; http/limit-refusal.ts
 * answers a refusal).
 */

/** One sliding window as OpenAI's x-ratelimit-* headers describe it. */
export interface WindowState {
  limit: number;
  remaining: number;
  /** Milliseconds until the window is back to its full limit (OpenAI's "reset"). */
  resetMs: number;
}

export interface LimitState {
  requests?: WindowState;
  tokens?: WindowState;
}

/** Which scope a limit belongs to: the user, or the key they called with. */
export type ScopeKind = "user" | "key";

/** A subject's limits, resolved: 0 means "no such limit". The key scope applies only when `keyId` is set. */
export interface ScopeLimits {
  userId: string;
  keyId: string | null;
  userRpm: number;
  keyRpm: number;
  userTpm: number;
  keyTpm: number;
}

/** A calendar month in UTC: budgets renew at its end. */
export interface BudgetMonth {
  /** `YYYY-MM`, part of the Redis key. */
  key: string;
  start: Date;
  end: Date;
}

export type AdmitOutcome =
  | { ok: true; state: LimitState }
  | { ok: false; state: LimitState; retryAfterMs: number; scope: ScopeKind };

export interface ReserveInput {
  limits: ScopeLimits;
  /** Unique per reservation: the log entry's member and the budget hold's name. */
  id: string;
  tokens: number;
  /** Null when the user has no monthly budget. Amounts in nano-dollars (integers). */
  budget: { month: BudgetMonth; limitNano: number; costNano: number } | null;
}

export type ReserveOutcome =
  | { ok: true; state: LimitState }
  | { ok: false; limit: "tpm"; state: LimitState; retryAfterMs: number; scope: ScopeKind; tooLarge: boolean }
  | { ok: false; limit: "budget"; state: LimitState; committedNano: number };

export interface SettleInput {
  /** The limits as they were at reserve time: they say which logs hold the reservation. */
  limits: ScopeLimits;
  id: string;
  tokens: number;
  costNano: number;
  /** The month the reservation was made in (a call that straddles midnight settles into its own month). */
  budgetMonth: BudgetMonth | null;
}

/**
 * Everything before an upstream call in one go: admit, look up the cache, take the coalescing lock, reserve; each
 * only when asked, in that order, stopping at the first that says no. The lookup and the lock are Redis key names
 * (the user's hash tag, so one Cluster slot): only the Redis store does them.
 */
export interface EnterInput {
  limits: ScopeLimits;
  /** Counts this request against rpm (its log entry's id). */
  requestId: string;
  /** The cache entry to read. */
  lookup?: string | undefined;
  /** The coalescing lock to take (SET NX PX). */
  lock?: { key: string; token: string; ttlMs: number } | undefined;
  reserve?: Omit<ReserveInput, "limits"> | undefined;
}

export type EnterOutcome =
  | {
      ok: true;
      state: LimitState;
      /** Held when asked, unless the cache answered or the lock is another's (then nothing is held). */
      reserved: boolean;
      /** The cached entry's text, when the lookup found one. */
      cached: string | undefined;
      /** "untried": no lock was asked for, or a refusal or the cache came first. */
      lock: "taken" | "busy" | "untried";
    }
  | { ok: false; limit: "rpm"; state: LimitState; retryAfterMs: number; scope: ScopeKind }
  | Exclude<ReserveOutcome, { ok: true }>;

export interface LimitStore {
  readonly kind: "redis" | "memory";
  /**
   * Admit, then reserve when asked. The Redis store also looks up and locks, in the same script (one round trip);
   * the memory store leaves both to the caller ("untried").
   */
  enter(input: EnterInput): Promise<EnterOutcome>;
  /** Counts one request against the rpm logs (none when `dryRun`) and reports both windows. */
  admit(limits: ScopeLimits, id: string, dryRun: boolean): Promise<AdmitOutcome>;
  /**
   * Holds tokens against tpm and cost against the budget. A success may report the tokens window only (the requests
   * window is the admission's, just before); a refusal reports both, for its headers.
   */
  reserve(input: ReserveInput): Promise<ReserveOutcome>;
  /** Idempotent: a reservation already settled (or expired) changes nothing. */
  settle(input: SettleInput): Promise<void>;
  close(): void;
}

/** The month's spend from the database, in nano-dollars: seeds a budget whose counter is missing. */
export type LoadMonthSpendNano = (userId: string, month: BudgetMonth) => Promise<number>;

export function budgetMonthOf(ms: number): BudgetMonth {
  const date = new Date(ms);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  return {
    key: `${year}-${String(month + 1).padStart(2, "0")}`,
    start: new Date(Date.UTC(year, month, 1)),
    end: new Date(Date.UTC(year, month + 1, 1)),
  };
}

/** Picks the window a client should see: the one with the least room left (on a tie, the later reset). */
export function tighter(a: WindowState | undefined, b: WindowState | undefined): WindowState | undefined {
  if (!a) return b;
  if (!b) return a;
  if (a.remaining !== b.remaining) return a.remaining < b.remaining ? a : b;
  return a.resetMs >= b.resetMs ? a : b;
}
