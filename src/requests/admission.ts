import { type LimitState, LimitRefusedError, type Limiter, type LimitSubject } from "../limits/limiter.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { CacheStep } from "./caching.ts";
import type { CacheEntry, JobInfo } from "./job.ts";

/** A request the limits let in: its rate-limit windows, its cache key, and the cached answer when there is one. */
export interface Admitted<T> {
  state: LimitState;
  key: string | undefined;
  hit: CacheEntry<T> | undefined;
}

/**
 * The first step: admit (every request counts against rpm, a cache hit too) and look up the cache. The two Redis
 * calls go out together, in one round trip; a refused request's lookup is simply dropped. Rejects with
 * LimitRefusedError when a limit says no.
 */
export function createAdmission(deps: { limiter: Limiter; caching: CacheStep; metrics: Metrics }) {
  const { limiter, caching, metrics } = deps;

  return async function admit<T>(job: JobInfo<T>, subject: LimitSubject): Promise<Admitted<T>> {
    const key = caching.keyOf(job as JobInfo<unknown>);
    const [admission, hit] = await Promise.all([limiter.admitRequest(subject), caching.lookup(job, key)]);
    if (!admission.ok) throw new LimitRefusedError(admission.refusal);
    metrics.cacheLookups.inc({ result: hit ? "hit" : key ? "miss" : "bypass" });
    return { state: admission.state, key, hit };
  };
}
