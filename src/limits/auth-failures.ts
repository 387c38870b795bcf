import { isIPv4, isIPv6 } from "node:net";
import type { RedisClient } from "../redis-connection.ts";
import { LRUCache } from "lru-cache";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";

/**
 * Slows down key guessing and credential stuffing: an address that fails authentication more than
 * `failuresPerMinute` times within a minute is refused (429) for `blockSeconds`. Only failures count, and only per
 * address, so a client elsewhere is never affected and a working client never counts at all.
 *
 * The failure counter is shared through Redis (rate-limiter-flexible's atomic Redis limiter, with an in-memory
 * insurance limiter for when Redis fails), so a guesser cannot multiply its tries by the number of instances. A
 * block, once seen, is remembered in-process, so a blocked address costs no Redis call and no database lookup
 * until its block ends.
 */

export interface AuthFailureLimiter {
  /** Milliseconds the address is still blocked for as far as this instance knows; 0 when it may try. No I/O. */
  blockedForMs(address: string): number;
  /** Counts one failed authentication; resolves to the block in ms when this failure crossed the limit, else 0. */
  recordFailure(address: string): Promise<number>;
}

export interface AuthFailureLimiterOptions {
  redis?: RedisClient;
  /** Failures allowed per address per minute; 0 turns the limit off. */
  failuresPerMinute: number;
  blockSeconds: number;
  now?: () => number;
}

const disabled: AuthFailureLimiter = { blockedForMs: () => 0, recordFailure: async () => 0 };

export function createAuthFailureLimiter(options: AuthFailureLimiterOptions): AuthFailureLimiter {
  if (options.failuresPerMinute <= 0) return disabled;
  const now = options.now ?? Date.now;
  const settings = { points: options.failuresPerMinute, duration: 60, blockDuration: options.blockSeconds };
  const memory = new RateLimiterMemory({ ...settings, keyPrefix: "arh:authfail" });
  const limiter = options.redis
    ? new RateLimiterRedis({
        ...settings,
        storeClient: options.redis,
        keyPrefix: "arh:authfail",
        // Straight to the insurance limiter while Redis is down, instead of waiting on it.
        rejectIfRedisNotReady: true,
        insuranceLimiter: memory,
      })
    : memory;
  const blockedUntil = new LRUCache<string, number>({ max: 10_000 });

  return {
    blockedForMs(address) {
      const until = blockedUntil.get(addressKey(address));
      if (until === undefined) return 0;
      const left = until - now();
      if (left > 0) return left;
      blockedUntil.delete(addressKey(address));
      return 0;
    },

    async recordFailure(address) {
      const key = addressKey(address);
      try {
        await limiter.consume(key);
        return 0;
      } catch (refusal) {
        // A RateLimiterRes is the "over the limit" answer; anything else is a store failure, which fails open.
        if (!(refusal instanceof RateLimiterRes)) return 0;
        const blockMs = Math.max(1, refusal.msBeforeNext);
        blockedUntil.set(key, now() + blockMs);
        return blockMs;
      }
    },
  };
}

/**
 * What counts as one address: an IPv4 address (also when written IPv4-mapped, ::ffff:1.2.3.4), or the /64 network
 * of an IPv6 address, since one IPv6 client commonly has a whole /64 to rotate through.
 */
function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (isIPv4(address)) return address;
  const bare = address.split("%")[0] ?? address;
  if (!isIPv6(bare)) return address;
  return `${expandIPv6(bare).slice(0, 4).join(":")}::/64`;
}

function expandIPv6(address: string): string[] {
  const [head = "", tail] = address.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const missing = 8 - left.length - right.length;
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, missing)).fill("0"), ...right];
  return groups.map((group) => (group.includes(".") ? group : group.toLowerCase().replace(/^0+(?=.)/, "")));
}
