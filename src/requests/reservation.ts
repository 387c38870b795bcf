import { observedTokensPerByte, promptSize, promptTokenBound, worstCaseCostUsd } from "../limits/estimate.ts";
import {
  type LimitSubject,
  LimitRefusedError,
  type Limiter,
  type Reservation,
  type ReserveResult,
} from "../limits/limiter.ts";
import type { TokenRatios } from "../limits/token-ratios.ts";
import type { Caller, JobInfo } from "./job.ts";

/** What a call that never happened, or failed before answering, used. */
const nothing = { tokens: 0, costUsd: 0 };
const ignore = () => {};

export interface ReservationStep {
  /**
   * Holds the most the call can use against tpm and the budget: the prompt's bytes at each model's learned tokens
   * per byte, plus its output cap, at the highest price among the models it may fall back to. Rejects with
   * LimitRefusedError when it does not fit.
   */
  reserve(job: JobInfo<unknown>, subject: LimitSubject): Promise<Reservation>;
  /** What reserve() holds, for the limits' entry to reserve in its own round trip: nothing without tpm or budget. */
  estimateOf(job: JobInfo<unknown>, subject: LimitSubject): { tokens: number; costUsd: number };
  /** Releases a reservation whose call never happened (refused, answered from the cache, or shared). */
  giveBack(reserving: Promise<Reservation>): void;
  /**
   * What the upstream reported of a call's prompt teaches the model's tokens per byte. A metered call measured its
   * prompt already; another is measured only while the model has no ratio here yet, so a model is learned from
   * its first calls whoever makes them, and the hot path of unmetered callers does not pay for it after that.
   */
  learn(job: JobInfo<unknown>, model: string, reportedPromptTokens: number | undefined): void;
  /** The job's model, then the fallbacks configured for it (or for its type). */
  modelsOf(job: JobInfo<unknown>): string[];
}

export function createReservationStep(deps: {
  limiter: Limiter;
  tokenRatios: TokenRatios;
  fallbacks?: Record<string, string[]>;
}): ReservationStep {
  const { limiter, tokenRatios, fallbacks } = deps;
  const modelsOf = (job: JobInfo<unknown>) => [job.model, ...(fallbacks?.[job.model] ?? fallbacks?.[job.type] ?? [])];

  function estimateOf(job: JobInfo<unknown>, subject: LimitSubject) {
    // Without a token limit or a budget there is nothing to hold: skip the estimate on the hot path.
    if (!subject.tpm && !subject.keyTpm && subject.monthlyBudgetUsd === null) return nothing;
    const estimate = job.estimate();
    const size = promptSize(estimate.body);
    job.size = size;
    const output = estimate.maxOutputTokens;
    let tokens = 0;
    let cost = 0;
    for (const model of modelsOf(job)) {
      const prompt = promptTokenBound(size, tokenRatios.tokensPerByte(model));
      tokens = Math.max(tokens, prompt + output);
      cost = Math.max(cost, worstCaseCostUsd(model, prompt, output));
    }
    return { tokens, costUsd: cost };
  }

  return {
    modelsOf,

    estimateOf,

    reserve(job, subject) {
      return limiter.reserve(subject, estimateOf(job, subject)).then(reserved);
    },

    giveBack(reserving) {
      void reserving.then((unused) => limiter.settle(unused, nothing), ignore);
    },

    learn(job, model, reportedPromptTokens) {
      if (!reportedPromptTokens || reportedPromptTokens <= 0) return;
      if (!job.size && tokenRatios.has(model)) return;
      const size = job.size ?? promptSize(job.estimate().body);
      const observed = observedTokensPerByte(size, reportedPromptTokens);
      if (observed !== undefined) tokenRatios.learn(model, observed);
    },
  };
}

/** The reservation, or the refusal thrown so that the pipeline stops where the limit said no. */
function reserved(result: ReserveResult): Reservation {
  if (!result.ok) throw new LimitRefusedError(result.refusal);
  return result.reservation;
}

/** A caller whose calls are reserved against a token limit or a budget before they are made. */
export function isMetered(caller: Caller): boolean {
  return Boolean(caller.user.tpm || caller.key?.tpm || caller.user.monthlyBudgetUsd !== null);
}
