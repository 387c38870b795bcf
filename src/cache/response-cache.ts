/**
 * The response cache: Redis when REDIS_URL is set, an in-process LRU otherwise, behind this one interface.
 * Values are JSON text. A cache that fails answers "miss" and the request goes on: the cache is never the
 * reason a request fails.
 */
export interface ResponseCache {
  readonly kind: "redis" | "memory";
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * The Redis cache only: the Redis key of an entry, so that a script of the same user's slot (the limits' entry)
   * can read it in the round trip it makes anyway.
   */
  redisKeyOf?(key: string): string;
}
