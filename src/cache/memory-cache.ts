import { LRUCache } from "lru-cache";
import type { ResponseCache } from "./response-cache.ts";

export function createMemoryCache(maxEntries: number): ResponseCache {
  const entries = new LRUCache<string, string>({ max: maxEntries, ttlAutopurge: false });
  return {
    kind: "memory",
    async get(key) {
      return entries.get(key);
    },
    async set(key, value, ttlSeconds) {
      if (ttlSeconds > 0) entries.set(key, value, { ttl: ttlSeconds * 1000 });
    },
    async delete(key) {
      entries.delete(key);
    },
  };
}
