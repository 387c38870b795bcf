import type { RedisClient } from "../redis-connection.ts";
import { LRUCache } from "lru-cache";

/** The answer a first request got, kept to answer its retries the same way. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type Claim =
  | { state: "new" }
  | { state: "running" }
  | { state: "done"; response: StoredResponse }
  /** The key was used with another body. */
  | { state: "mismatch" };

/**
 * Idempotency keys per user: the first request with a key claims it; a retry with the same key and body gets the
 * first one's answer; the same key with another body is refused. Redis when configured (shared by every instance),
 * memory otherwise.
 */
export interface IdempotencyStore {
  claim(scope: string, key: string, fingerprint: string): Promise<Claim>;
  complete(scope: string, key: string, fingerprint: string, response: StoredResponse): Promise<void>;
  /** Frees a claim whose request ended without an answer worth replaying (a 5xx, a stream), so a retry runs. */
  release(scope: string, key: string, fingerprint: string): Promise<void>;
}

interface Entry {
  fingerprint: string;
  response?: StoredResponse;
}

function toClaim(entry: Entry, fingerprint: string): Claim {
  if (entry.fingerprint !== fingerprint) return { state: "mismatch" };
  return entry.response ? { state: "done", response: entry.response } : { state: "running" };
}

export function createMemoryIdempotencyStore(ttlSeconds: number): IdempotencyStore {
  const entries = new LRUCache<string, Entry>({ max: 100_000, ttl: ttlSeconds * 1000 });
  const id = (scope: string, key: string) => `${scope}\u0000${key}`;
  return {
    async claim(scope, key, fingerprint) {
      const existing = entries.get(id(scope, key));
      if (existing) return toClaim(existing, fingerprint);
      entries.set(id(scope, key), { fingerprint });
      return { state: "new" };
    },
    async complete(scope, key, fingerprint, response) {
      entries.set(id(scope, key), { fingerprint, response });
    },
    async release(scope, key, fingerprint) {
      const existing = entries.get(id(scope, key));
      if (existing?.fingerprint === fingerprint && !existing.response) entries.delete(id(scope, key));
    },
  };
}

/** Deletes a claim only if it is still this body's unanswered one. */
const releaseScript = `
local value = redis.call("get", KEYS[1])
if not value then return 0 end
local entry = cjson.decode(value)
if entry.fingerprint == ARGV[1] and entry.response == nil then return redis.call("del", KEYS[1]) end
return 0`;

export function createRedisIdempotencyStore(redis: RedisClient, ttlSeconds: number): IdempotencyStore {
  const id = (scope: string, key: string) => `arh:idem:${scope}:${key}`;
  return {
    async claim(scope, key, fingerprint) {
      const claimed = await redis.set(id(scope, key), JSON.stringify({ fingerprint }), "EX", ttlSeconds, "NX");
      if (claimed === "OK") return { state: "new" };
      const text = await redis.get(id(scope, key));
      // Gone between the two calls (released): claim again.
      if (text === null) return this.claim(scope, key, fingerprint);
      return toClaim(JSON.parse(text) as Entry, fingerprint);
    },
    async complete(scope, key, fingerprint, response) {
      await redis.set(id(scope, key), JSON.stringify({ fingerprint, response }), "EX", ttlSeconds);
    },
    async release(scope, key, fingerprint) {
      await redis.eval(releaseScript, 1, id(scope, key), fingerprint);
    },
  };
}
