import type { ResponseCache } from "../cache/response-cache.ts";
import { cacheKey } from "./cache-key.ts";
import type { CacheEntry, JobInfo, Produced } from "./job.ts";

/** The lookup and fill steps: a job's cache key, the answer stored under it, and storing a new one. */
export interface CacheStep {
  /** Undefined when the job may not be cached: its own switch, Cache-Control, or caching turned off. */
  keyOf(job: JobInfo<unknown>): string | undefined;
  /** The stored answer, unless the job refreshes (Cache-Control: no-cache); an unreadable entry is a miss. */
  lookup<T>(job: JobInfo<T>, key: string | undefined): Promise<CacheEntry<T> | undefined>;
  /**
   * The Redis key of a job's entry when the job reads the cache and the cache is in Redis: the limits' entry script
   * reads it then, in its own round trip. Undefined otherwise (the lookup is made on its own).
   */
  lookupKeyOf(job: JobInfo<unknown>, key: string | undefined): string | undefined;
  /** An entry's stored text as an entry; undefined when unreadable (a miss). */
  parse<T>(text: string): CacheEntry<T> | undefined;
  /** A failed fill only costs a later miss (the cache reports and swallows its errors). */
  fill<T>(key: string | undefined, produced: Produced<T>): Promise<void>;
  entryOf<T>(produced: Produced<T>): CacheEntry<T>;
}

function parse<T>(text: string): CacheEntry<T> | undefined {
  try {
    return JSON.parse(text) as CacheEntry<T>;
  } catch {
    return undefined;
  }
}

export function createCacheStep(deps: {
  cache: ResponseCache;
  ttlSeconds: number;
  /** The provider that serves a model: part of the key, so an answer is never served for another provider's. */
  nameOf(model: string): string;
}): CacheStep {
  const { cache, ttlSeconds, nameOf } = deps;
  const entryOf = <T>(produced: Produced<T>): CacheEntry<T> => ({
    provider: produced.provider,
    model: produced.model,
    value: produced.value,
    usage: produced.usage,
  });

  return {
    entryOf,

    keyOf(job) {
      if (!job.cacheable || job.context.cacheMode === "bypass" || ttlSeconds <= 0) return undefined;
      return cacheKey({
        userId: job.caller.user.id,
        api: job.source,
        type: job.type,
        provider: nameOf(job.model),
        model: job.model,
        input: job.input,
        options: job.options,
      });
    },

    async lookup<T>(job: JobInfo<T>, key: string | undefined) {
      if (!key || job.context.cacheMode !== "use") return undefined;
      const text = await cache.get(key);
      return text === undefined ? undefined : parse<T>(text);
    },

    lookupKeyOf(job, key) {
      if (!key || job.context.cacheMode !== "use" || !cache.redisKeyOf) return undefined;
      return cache.redisKeyOf(key);
    },

    parse,

    async fill(key, produced) {
      if (key) await cache.set(key, JSON.stringify(entryOf(produced)), ttlSeconds);
    },
  };
}
