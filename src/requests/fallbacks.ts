import { isAppError } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { CallOptions } from "../providers/provider.ts";
import type { JobInfo, Progress } from "./job.ts";

/** Failures another model may not have. */
const fallbackCodes = new Set(["upstream_error", "upstream_timeout", "upstream_invalid_output"]);

/** The models a call tries, in order, and what each attempt went through (for the record). */
export interface Fallbacks {
  /**
   * Runs `attempt` with the job's model, then with each fallback configured for the model or the type, while the
   * failure is the upstream's (an error past retries, a timeout, output that never fit). The caller's own
   * mistakes and a client that left end it at once.
   */
  eachModel<R>(job: JobInfo<unknown>, progress: Progress, attempt: (model: string) => Promise<R>): Promise<R>;
  /** The provider's call options for one job: its abort signal, and retries recorded into `progress`. */
  callOptions(job: JobInfo<unknown>, progress: Progress): CallOptions;
}

export function createFallbacks(deps: {
  modelsOf(job: JobInfo<unknown>): string[];
  nameOf(model: string): string;
  metrics: Metrics;
  logger: Logger;
}): Fallbacks {
  const { modelsOf, nameOf, metrics, logger } = deps;

  return {
    async eachModel(job, progress, attempt) {
      const models = modelsOf(job);
      for (let i = 0; ; i++) {
        const model = models[i]!;
        progress.model = model;
        try {
          const value = await attempt(model);
          progress.attempts.push({ model, outcome: "ok" });
          return value;
        } catch (error) {
          progress.attempts.push({ model, outcome: isAppError(error) ? error.code : "error" });
          const next = models[i + 1];
          if (!next || !isAppError(error) || !fallbackCodes.has(error.code) || job.context.signal?.aborted) throw error;
          metrics.upstreamErrors.inc({ provider: nameOf(model), code: error.code });
          logger.warn({ model, fallback: next, code: error.code }, "upstream failed; trying the fallback model");
        }
      }
    },

    callOptions(job, progress) {
      return {
        signal: job.context.signal,
        onRetry: (retry) => {
          progress.retries++;
          progress.attempts.push({ model: progress.model, outcome: retry.reason });
          metrics.upstreamRetries.inc({ provider: nameOf(progress.model) });
        },
      };
    },
  };
}
