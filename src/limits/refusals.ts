import { randomToken } from "../ids.ts";
import { nanoPerUsd, toNano } from "../usd.ts";
import {
  type AdmitOutcome,
  type BudgetMonth,
  budgetMonthOf,
  type ReserveInput,
  type ReserveOutcome,
  type ScopeLimits,
} from "./limit-store.ts";
import type { LimitRefusal, LimitSubject } from "./outcomes.ts";

/**
 * A subject's limits as the stores take them, what a reservation of an estimate holds, and the stores' plain "no"
 * turned into a refusal (which limit, for whom, and when to retry).
 */

/** A subject's limits, resolved: 0 means "no such limit"; the key scope only when the key has a limit of its own. */
export function scopeLimits(subject: LimitSubject): ScopeLimits {
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

/** What one reservation holds, and when and for whom it was asked. */
export interface Holding {
  at: number;
  month: BudgetMonth;
  limits: ScopeLimits;
  costUsd: number;
  input: Omit<ReserveInput, "limits">;
}

/** What a reservation of `estimate` holds at `at`; undefined when the subject has no tpm and no budget. */
export function holdingFor(
  subject: LimitSubject,
  limits: ScopeLimits,
  estimate: { tokens: number; costUsd: number },
  at: number,
): Holding | undefined {
  const budgetUsd = subject.monthlyBudgetUsd;
  const hasBudget = budgetUsd !== null && budgetUsd !== undefined;
  if (limits.userTpm <= 0 && limits.keyTpm <= 0 && !hasBudget) return undefined;
  const month = budgetMonthOf(at);
  const tokens = Math.max(0, Math.ceil(estimate.tokens));
  const budget = hasBudget ? { month, limitNano: toNano(budgetUsd), costNano: toNano(estimate.costUsd) } : null;
  return { at, month, limits, costUsd: estimate.costUsd, input: { id: newEntryId(), tokens, budget } };
}

export function rpmRefusal(limits: ScopeLimits, outcome: Exclude<AdmitOutcome, { ok: true }>): LimitRefusal {
  return {
    limit: "rpm",
    scope: outcome.scope,
    allowed: outcome.scope === "key" ? limits.keyRpm : limits.userRpm,
    retryAfterMs: outcome.retryAfterMs,
    state: outcome.state,
  };
}

export function reserveRefusal(
  subject: LimitSubject,
  limits: ScopeLimits,
  holding: Holding | undefined,
  outcome: Exclude<ReserveOutcome, { ok: true }>,
  now: number,
): LimitRefusal {
  const at = holding?.at ?? now;
  if (outcome.limit === "budget") {
    const month = holding?.month ?? budgetMonthOf(at);
    return {
      limit: "budget",
      budgetUsd: subject.monthlyBudgetUsd ?? 0,
      committedUsd: outcome.committedNano / nanoPerUsd,
      costUsd: holding?.costUsd ?? 0,
      renewsAt: month.end,
      retryAfterMs: month.end.getTime() - at,
      state: outcome.state,
    };
  }
  return {
    limit: "tpm",
    scope: outcome.scope,
    allowed: outcome.scope === "key" ? limits.keyTpm : limits.userTpm,
    tokens: holding?.input.tokens ?? 0,
    tooLarge: outcome.tooLarge,
    retryAfterMs: outcome.retryAfterMs,
    state: outcome.state,
  };
}

/** Unique enough for a log entry (~72 random bits) and short: it is stored once per request per window. */
export function newEntryId(): string {
  return randomToken(14);
}
