import type { Redis } from "ioredis";
import type { ResponseCache } from "./response-cache.ts";

const namespace = "arh:cache:";

/** Failures are reported through onError and answered as a miss (get) or ignored (set). */
export function createRedisCache(redis: Redis, onError: (error: unknown) => void): ResponseCache {
  return {
    kind: "redis",
    async get(key) {
      try {
        return (await redis.get(namespace + key)) ?? undefined;
      } catch (error) {
        onError(error);
        return undefined;
      }
    },
    async set(key, value, ttlSeconds) {
      if (ttlSeconds <= 0) return;
      try {
        await redis.set(namespace + key, value, "EX", ttlSeconds);
      } catch (error) {
        onError(error);
      }
    },
    async delete(key) {
      try {
        await redis.del(namespace + key);
      } catch (error) {
        onError(error);
      }
    },
  };
}
