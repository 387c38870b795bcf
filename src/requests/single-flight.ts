import { setTimeout as delay } from "node:timers/promises";
import type { RedisClient } from "../redis-connection.ts";
import { isAppError } from "../errors.ts";
import { randomToken } from "../ids.ts";

/**
 * Identical requests in flight at the same time share one upstream call. In this process they wait on the same
 * promise; across instances that share a Redis, a short lock names the one instance that calls the upstream, and
 * the others wait for its answer to appear in the shared cache.
 */
export interface SingleFlight {
  /**
   * `lead` makes the call and must have filled the cache (or sent the fill, on the same Redis connection) before it
   * resolves; `readShared` reads a leader's answer from the cache. `shared` says the answer came from another caller's call.
   */
  run<T>(
    key: string,
    lead: () => Promise<T>,
    readShared: () => Promise<T | undefined>,
    entered?: FlightEntry,
  ): Promise<{ value: T; shared: boolean }>;
  /**
   * With Redis: the lock a request of `key` would take, for a script that takes it in a round trip it makes anyway
   * (the limits' entry); pass what came of it to `run` as `entered`. Undefined without Redis.
   */
  lockOf(key: string): { key: string; token: string; ttlMs: number } | undefined;
  /** Whether a call for `key` is in flight in this process: a `run` for it now would share that call. */
  running(key: string): boolean;
  /** Calls in flight in this process (for tests and metrics). */
  size(): number;
}

/** The lock across instances as a request's entry left it: taken (with its token), or held by another instance. */
export type FlightEntry = { taken: string } | "busy" | undefined;

export interface SingleFlightOptions {
  redis?: RedisClient;
  /** How long another instance may hold a key before this one stops waiting and calls the upstream itself. */
  lockTtlMs: number;
  /** How often a waiting instance looks for the leader's answer. Default 20 ms. */
  pollIntervalMs?: number;
  onRedisError?: (error: unknown) => void;
}

const lockPrefix = "arh:flight:";

/** Deletes the lock only if it is still ours: a slow leader must not free a lock another instance took over. */
const releaseScript = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

export function createSingleFlight(options: SingleFlightOptions): SingleFlight {
  const { redis, lockTtlMs } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 20;
  const local = new Map<string, Promise<unknown>>();

  async function leadAcrossInstances<T>(
    key: string,
    lead: () => Promise<T>,
    readShared: () => Promise<T | undefined>,
    entered: FlightEntry,
  ): Promise<{ value: T; shared: boolean }> {
    // A request whose own lookup missed just before a leader filled the cache may arrive here after that leader is
    // gone: the cache is read again as the lock is taken (one round trip), so it is answered from the fill instead
    // of calling the upstream a second time.
    const readAgain = () => readShared().catch(() => undefined);
    if (!redis) {
      const shared = await readAgain();
      return shared !== undefined ? { value: shared, shared: true } : { value: await lead(), shared: false };
    }
    const lockKey = lockPrefix + key;
    // The entry took the lock already (its lookup missed just before): this request calls the upstream.
    if (entered && entered !== "busy") return leadHolding(lockKey, entered.taken, lead);
    const token = randomToken(20);
    const deadline = Date.now() + lockTtlMs;
    // The entry found the lock another's (and the cache empty): straight to waiting for that instance's answer.
    let waitFirst = entered === "busy";

    while (Date.now() < deadline) {
      if (!waitFirst) {
        let acquired: boolean;
        let filled: T | undefined;
        try {
          // The lock goes first: taking it means a leader's release, and so its fill, came before this read.
          [acquired, filled] = await Promise.all([
            redis.set(lockKey, token, "PX", lockTtlMs, "NX").then((answer) => answer === "OK"),
            readAgain(),
          ]);
        } catch (error) {
          // Without Redis each instance coalesces only its own requests; the call itself goes ahead.
          options.onRedisError?.(error);
          return { value: await lead(), shared: false };
        }
        if (filled !== undefined) {
          if (acquired) release(lockKey, token);
          return { value: filled, shared: true };
        }
        if (acquired) return leadHolding(lockKey, token, lead);
      }
      waitFirst = false;
      // Another instance is calling the upstream: wait for its answer, or for its lock to go (it failed).
      while (Date.now() < deadline) {
        await delay(pollIntervalMs);
        // The lock check goes first, in the same round trip as the read: the leader's fill precedes its release,
        // so a lock seen gone means the read after it finds the answer. Read first, and a fill and release landing
        // between the two would look like a failed leader and start a second upstream call.
        const holding = redis.exists(lockKey).catch(() => 0);
        const shared = await readShared();
        if (shared !== undefined) return { value: shared, shared: true };
        if (!(await holding)) break;
      }
    }
    // The other instance took longer than its lock allows: stop waiting and call the upstream here.
    return { value: await lead(), shared: false };
  }

  async function leadHolding<T>(lockKey: string, token: string, lead: () => Promise<T>) {
    try {
      return { value: await lead(), shared: false };
    } finally {
      // Not awaited: it follows the leader's cache fill on the same connection, so Redis runs it after the fill.
      release(lockKey, token);
    }
  }

  function release(lockKey: string, token: string): void {
    redis?.eval(releaseScript, 1, lockKey, token).catch((error: unknown) => options.onRedisError?.(error));
  }

  return {
    async run(key, lead, readShared, entered) {
      for (;;) {
        const running = local.get(key) as Promise<{ value: Awaited<ReturnType<typeof lead>> }> | undefined;
        if (running) {
          // A call of this process got there first: the lock the entry took is not needed.
          if (entered && entered !== "busy") release(lockPrefix + key, entered.taken);
          entered = undefined;
          try {
            return { value: (await running).value, shared: true };
          } catch (error) {
            // The leader's client went away and its call was cancelled; that is no answer for the others.
            if (isAppError(error) && error.code === "client_closed") continue;
            throw error;
          }
        }
        const own = leadAcrossInstances(key, lead, readShared, entered);
        local.set(key, own);
        const forget = () => {
          if (local.get(key) === own) local.delete(key);
        };
        own.then(forget, forget);
        return own;
      }
    },
    running: (key) => local.has(key),
    lockOf: (key) => (redis ? { key: lockPrefix + key, token: randomToken(20), ttlMs: lockTtlMs } : undefined),
    size: () => local.size,
  };
}
