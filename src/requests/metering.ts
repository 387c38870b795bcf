import { cacheTokensOf, costUsd } from "../cost.ts";
import type { Limiter, Reservation } from "../limits/limiter.ts";
import type { CallOptions } from "../providers/provider.ts";
import type { Fallbacks } from "./fallbacks.ts";
import type { Job, JobInfo, Produced, Progress, TokenUsage } from "./job.ts";
import type { ReservationStep } from "./reservation.ts";

/** The settle step: a reservation replaced by what the call really used, whatever its outcome. */
export interface Metering {
  /**
   * Makes the job's call (with its fallbacks) against a reservation held before it, so concurrent requests cannot
   * overshoot tpm or the budget; settles it with the call's usage, or with nothing when the call failed.
   */
  call<T>(job: Job<T>, reservation: Reservation, progress: Progress, options: CallOptions): Promise<Produced<T>>;
  /** Settles a reservation with what was used (nothing when `usage` is undefined), priced at `model`. */
  settle(reservation: Reservation, usage: TokenUsage | undefined, model: string): Promise<void>;
}

const nothing = { tokens: 0, costUsd: 0 };

export function createMetering(deps: {
  limiter: Limiter;
  reservations: ReservationStep;
  fallbacks: Fallbacks;
}): Metering {
  const { limiter, reservations, fallbacks } = deps;

  const settle = (reservation: Reservation, usage: TokenUsage | undefined, model: string) =>
    limiter.settle(
      reservation,
      usage
        ? {
            tokens: usage.total_tokens,
            costUsd: costUsd(model, usage.prompt_tokens, usage.completion_tokens, cacheTokensOf(usage)) ?? 0,
          }
        : nothing,
    );

  return {
    settle,

    async call<T>(job: Job<T>, reservation: Reservation, progress: Progress, options: CallOptions) {
      // settle() never throws (it retries in the background), so it is not awaited: it joins the next Redis write.
      let produced: Produced<T>;
      try {
        produced = await fallbacks.eachModel(job as JobInfo<unknown>, progress, (model) => job.call(model, options));
      } catch (error) {
        void settle(reservation, undefined, job.model);
        throw error;
      }
      void settle(reservation, produced.usage, produced.model);
      reservations.learn(job, progress.model, produced.reportedPromptTokens);
      return produced;
    },
  };
}
