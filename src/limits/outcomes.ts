import type { ApiKeyRecord, UserRecord } from "../db/types.ts";
import type { LimitState, ScopeKind } from "./limit-store.ts";

/**
 * What the limits answer with: who a request counts against, and whether it may go ahead (its windows after it) or
 * which limit refused it and when to retry. Values, never HTTP errors or headers: http/limit-refusal.ts is the one
 * place a refusal becomes a 429.
 */

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

/** Why a request may not go ahead, and when it may: a value the HTTP layer turns into a 429 (http/limit-refusal.ts). */
export type LimitRefusal =
  | {
      limit: "rpm";
      scope: ScopeKind;
      /** Requests per minute of that scope. */
      allowed: number;
      retryAfterMs: number;
      state: LimitState;
    }
  | {
      limit: "tpm";
      scope: ScopeKind;
      /** Tokens per minute of that scope. */
      allowed: number;
      /** What the request may use at most. */
      tokens: number;
      /** More tokens than the whole limit: waiting cannot help. */
      tooLarge: boolean;
      retryAfterMs: number;
      state: LimitState;
    }
  | {
      limit: "budget";
      budgetUsd: number;
      /** Spent this month or held by calls in flight. */
      committedUsd: number;
      /** What the call may cost at most. */
      costUsd: number;
      /** When the month renews (UTC). */
      renewsAt: Date;
      retryAfterMs: number;
      state: LimitState;
    };

/** A refused request, thrown by the request pipeline so that it stops where the limit said no. */
export class LimitRefusedError extends Error {
  override name = "LimitRefusedError";
  constructor(readonly refusal: LimitRefusal) {
    super(`refused by the ${refusal.limit} limit`);
  }
}

/** The budget could not be checked: the month's spend could not be read from the database. */
export class BudgetUnavailableError extends Error {
  override name = "BudgetUnavailableError";
}

export type Admission = { ok: true; state: LimitState } | { ok: false; refusal: LimitRefusal };
export type ReserveResult = { ok: true; reservation: Reservation } | { ok: false; refusal: LimitRefusal };

export type LimitName = "rpm" | "tpm" | "budget";

/**
 * What the one round trip before an upstream call is asked to do besides admitting the request. The lookup and the
 * lock are Redis key names in the user's slot; they are done only when the limits run in Redis (see Entry.lookedUp).
 */
export interface EntryRequest {
  /** What to hold against tpm and the budget; none: hold nothing (a cache hit or a shared call may follow). */
  estimate?: { tokens: number; costUsd: number } | undefined;
  /** A cache entry to read. */
  lookup?: string | undefined;
  /** The coalescing lock to take. */
  lock?: { key: string; token: string; ttlMs: number } | undefined;
}

export type Entry =
  | { ok: false; refusal: LimitRefusal }
  | {
      ok: true;
      /** The windows after this request (and its reservation). */
      state: LimitState;
      /** Held when an estimate was given, unless the cache answered or the lock is another's. */
      reservation: Reservation | undefined;
      /** Whether the lookup was done here; when not (no Redis, or Redis failing), the caller looks up itself. */
      lookedUp: boolean;
      /** The cached entry's text, when the lookup found one. */
      cached: string | undefined;
      /** "untried": no lock asked for, or the limits ran in memory; "busy": another holds it. */
      lock: "taken" | "busy" | "untried";
    };

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
