import { LRUCache } from "lru-cache";
import type { ApiKeyRecord, UserRecord } from "../db/types.ts";
import { hashApiKey, looksLikeApiKey } from "./api-key.ts";

/** Who is calling: the user and the key they used (none for the operator's ADMIN_API_KEY). */
export interface Principal {
  user: UserRecord;
  key: ApiKeyRecord | null;
}

export interface KeyVerifierOptions {
  findByHash(hash: string): Promise<{ key: ApiKeyRecord; user: UserRecord } | undefined>;
  /** How long a verified key is trusted without asking the database again. 0 disables the cache. */
  ttlMs: number;
  maxEntries?: number;
  now?: () => number;
}

export interface KeyVerifier {
  /** The principal for a raw key, or undefined when it is unknown, revoked, expired or its user disabled. */
  verify(rawKey: string): Promise<Principal | undefined>;
  /** Forget cached verifications of one key (revocation) or of one user's keys (disable, limits changed). */
  invalidateKey(keyId: string): void;
  invalidateUser(userId: string): void;
  clear(): void;
}

export function createKeyVerifier(options: KeyVerifierOptions): KeyVerifier {
  const now = options.now ?? Date.now;
  // Only successes are cached: caching misses would delay a freshly created key by the TTL.
  const cache = new LRUCache<string, Principal>({ max: options.maxEntries ?? 10_000, ttl: Math.max(options.ttlMs, 1) });
  // Lookups of the same key that arrive together share one database query.
  let inFlight = new Map<string, Promise<Principal | undefined>>();
  // Bumped by every invalidation: a lookup that started before one may have read the row before the change was
  // committed, so its answer serves that one call but is not cached (or shared with calls that start later).
  let generation = 0;
  const invalidated = () => {
    generation++;
    inFlight = new Map();
  };

  const usable = (principal: Principal): boolean => {
    const { key, user } = principal;
    if (user.disabled) return false;
    if (!key) return true;
    if (key.revokedAt) return false;
    return !(key.expiresAt && key.expiresAt.getTime() <= now());
  };

  return {
    async verify(rawKey) {
      if (!looksLikeApiKey(rawKey)) return undefined;
      const hash = hashApiKey(rawKey);
      const cached = options.ttlMs > 0 ? cache.get(hash) : undefined;
      if (cached) return usable(cached) ? cached : undefined;

      let lookup = inFlight.get(hash);
      if (!lookup) {
        const startedIn = generation;
        const lookups = inFlight;
        lookup = options
          .findByHash(hash)
          .then((found) => {
            if (!found) return undefined;
            const principal: Principal = { user: found.user, key: found.key };
            if (options.ttlMs > 0 && usable(principal) && startedIn === generation) cache.set(hash, principal);
            return principal;
          })
          .finally(() => lookups.delete(hash));
        lookups.set(hash, lookup);
      }
      const principal = await lookup;
      return principal && usable(principal) ? principal : undefined;
    },
    invalidateKey(keyId) {
      invalidated();
      for (const [hash, principal] of cache.entries()) if (principal.key?.id === keyId) cache.delete(hash);
    },
    invalidateUser(userId) {
      invalidated();
      for (const [hash, principal] of cache.entries()) if (principal.user.id === userId) cache.delete(hash);
    },
    clear() {
      invalidated();
      cache.clear();
    },
  };
}
