import type { RedisClient } from "../redis-connection.ts";
import { throttledReports } from "../observability/throttled-log.ts";
import { withTimeout } from "../timeout.ts";
import type { ResponseCache } from "./response-cache.ts";

const namespace = "arh:cache:";

export interface RedisCacheOptions {
  /**
   * The longest a cache command may take before it counts as failed (a miss for `get`). Redis that is gone fails at
   * once (no offline queue); this bounds a Redis that is there but does not answer (frozen, partitioned, swamped).
   * Default 500 ms.
   */
  timeoutMs?: number;
  /** At most one `onError` call per this many ms while failures go on; the next one carries the count. Default 10 s. */
  reportEveryMs?: number;
  now?: () => number;
}

export class CacheTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`the cache did not answer within ${timeoutMs} ms`);
    this.name = "CacheTimeoutError";
  }
}

/**
 * Failures are reported through onError and answered as a miss (get) or ignored (set, delete): a cache outage costs
 * upstream calls, never a failed request. While Redis is away every request fails its lookup, so the reports are
 * throttled: the first failure at once, then one every `reportEveryMs` with the number of failures left unreported;
 * a command that succeeds ends the outage, and the next failure is reported at once again.
 */
export function createRedisCache(
  redis: RedisClient,
  onError: (error: unknown, unreportedFailures: number) => void,
  options: RedisCacheOptions = {},
): ResponseCache {
  const timeoutMs = options.timeoutMs ?? 500;
  const reports = throttledReports(onError, { intervalMs: options.reportEveryMs ?? 10_000, now: options.now });

  async function bounded<T>(command: Promise<T>): Promise<T> {
    const result = await withTimeout(command, timeoutMs, () => new CacheTimeoutError(timeoutMs));
    reports.recovered();
    return result;
  }

  return {
    kind: "redis",
    redisKeyOf: (key) => namespace + key,
    async get(key) {
      try {
        return (await bounded(redis.get(namespace + key))) ?? undefined;
      } catch (error) {
        reports.failed(error);
        return undefined;
      }
    },
    async set(key, value, ttlSeconds) {
      if (ttlSeconds <= 0) return;
      try {
        await bounded(redis.set(namespace + key, value, "EX", ttlSeconds));
      } catch (error) {
        reports.failed(error);
      }
    },
    async delete(key) {
      try {
        await bounded(redis.del(namespace + key));
      } catch (error) {
        reports.failed(error);
      }
    },
  };
}
