import type { ResponseCache } from "../cache/response-cache.ts";
import { cacheKey } from "./cache-key.ts";
import type { CacheEntry, JobInfo, Produced } from "./job.ts";

/** The lookup and fill steps: a job's cache key, the answer stored under it, and storing a new one. */
export interface CacheStep {
  /** Undefined when the job may not be cached: its own switch, Cache-Control, or caching turned off. */
  keyOf(job: JobInfo<unknown>): string | undefined;
  /** The stored answer, unless the job refreshes (Cache-Control: no-cache); an unreadable entry is a miss. */
  lookup<T>(job: JobInfo<T>, key: string | undefined): Promise<CacheEntry<T> | undefined>;
  /** A failed fill only costs a later miss (the cache reports and swallows its errors). */
  fill<T>(key: string | undefined, produced: Produced<T>): Promise<void>;
  entryOf<T>(produced: Produced<T>): CacheEntry<T>;
}

export function createCacheStep(deps: { cache: ResponseCache; ttlSeconds: number; providerName: string }): CacheStep {
  const { cache, ttlSeconds, providerName } = deps;
  const entryOf = <T>(produced: Produced<T>): CacheEntry<T> => ({
    provider: providerName,
    model: produced.model,
    value: produced.value,
    usage: produced.usage,
  });

  return {
    entryOf,

    keyOf(job) {
      if (!job.cacheable || job.context.cacheMode === "bypass" || ttlSeconds <= 0) return undefined;
      return cacheKey({
        scope: job.caller.user.id,
        api: job.source,
        type: job.type,
        model: job.model,
        input: job.input,
        options: job.options,
      });
    },

    async lookup<T>(job: JobInfo<T>, key: string | undefined) {
      if (!key || job.context.cacheMode !== "use") return undefined;
      const text = await cache.get(key);
      if (text === undefined) return undefined;
      try {
        return JSON.parse(text) as CacheEntry<T>;
      } catch {
        return undefined;
      }
    },

    async fill(key, produced) {
      if (key) await cache.set(key, JSON.stringify(entryOf(produced)), ttlSeconds);
    },
  };
}
