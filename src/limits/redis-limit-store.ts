import { type RedisClient, userHashTag } from "../redis-connection.ts";
import { type Script, scripts } from "./redis-scripts.ts";
import type {
  AdmitOutcome,
  EnterInput,
  EnterOutcome,
  BudgetMonth,
  LimitState,
  LimitStore,
  LoadMonthSpendNano,
  ReserveInput,
  ReserveOutcome,
  ScopeKind,
  ScopeLimits,
  SettleInput,
  WindowState,
} from "./limit-store.ts";

/**
 * Limits shared by every instance on one Redis. Each operation is one Lua script, so a check and the count it
 * guards happen atomically: 50 concurrent requests against rpm 10 let exactly 10 through, whichever instance
 * they arrive at.
 *
 * Algorithm: a sliding-window log per scope and limit. rpm: a sorted set of admitted requests scored by time;
 * tpm: a sorted set of reservations scored by time plus a hash of their token amounts and a running total. The
 * log is exact at any alignment (a fixed window lets 2× the limit through around a boundary; the two-window
 * weighted counter only approximates), and tpm needs per-entry amounts anyway, because a reservation is replaced
 * by the real usage when it settles. The price is memory in proportion to the requests in the last minute.
 *
 * Key layout (all with TTLs; <scope> is {u:<userId>} for the user, {u:<userId>}:k:<keyId> for one of their keys):
 *   arh:limits:rpm:<scope>          ZSET  member = request id, score = ms; PEXPIRE window
 *   arh:limits:tpm:<scope>          ZSET  member = reservation id, score = ms; PEXPIRE window
 *   arh:limits:tpm:<scope>:amounts  HASH  <reservation id> = tokens, p:<reservation id> = 1 until settled,
 *                                         total = sum of the amounts in the window
 *   arh:budget:{u:<userId>}:<YYYY-MM>  HASH  spent = nano-dollars settled this month (seeded from the database
 *                                         when missing), r:<reservation id> = "<nano>:<hold expiry ms>";
 *                                         PEXPIREAT a day after the month ends
 * The scripts take their time from Redis (TIME) unless a clock is injected, so instances with skewed clocks
 * still share one timeline. Every key a script touches is passed in KEYS, and all of them carry the user's hash
 * tag: on a Redis Cluster each script runs on the one slot of its user.
 */

/** EVALSHA, and EVAL once when Redis does not know the script yet (a restart or SCRIPT FLUSH forgets them). */
async function run(redis: RedisClient, { source, sha }: Script, keys: string[], args: Array<string | number>) {
  try {
    return await redis.evalsha(sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith("NOSCRIPT")) {
      return await redis.eval(source, keys.length, ...keys, ...args);
    }
    throw error;
  }
}

export interface RedisLimitStoreOptions {
  redis: RedisClient;
  /** Injected clock (tests); by default the scripts read Redis's own clock. */
  now?: () => number;
  windowMs: number;
  /** How long an unsettled budget reservation holds its amount before it is released. */
  holdMs: number;
  loadMonthSpendNano: LoadMonthSpendNano;
}

/** Key names, exported for tests that clean up after themselves. */
export function limitKeys(limits: Pick<ScopeLimits, "userId" | "keyId">, month?: BudgetMonth) {
  // Every key of one user carries the user's hash tag, the key scope's too (a key belongs to one user): each script
  // then touches one Redis Cluster slot.
  const user = userHashTag(limits.userId);
  const key = `${user}:k:${limits.keyId ?? "-"}`;
  return {
    userRpm: `arh:limits:rpm:${user}`,
    keyRpm: `arh:limits:rpm:${key}`,
    userTpm: `arh:limits:tpm:${user}`,
    userTpmAmounts: `arh:limits:tpm:${user}:amounts`,
    keyTpm: `arh:limits:tpm:${key}`,
    keyTpmAmounts: `arh:limits:tpm:${key}:amounts`,
    budget: `arh:budget:${user}:${month?.key ?? "-"}`,
  };
}

const dayMs = 86_400_000;

export function createRedisLimitStore(options: RedisLimitStoreOptions): LimitStore {
  const { redis, windowMs, holdMs } = options;
  const clock = () => (options.now ? String(options.now()) : "");

  const keyList = (limits: ScopeLimits, month?: BudgetMonth) => {
    const k = limitKeys(limits, month);
    return [k.userRpm, k.keyRpm, k.userTpm, k.userTpmAmounts, k.keyTpm, k.keyTpmAmounts, k.budget];
  };

  async function seed(limits: ScopeLimits, month: BudgetMonth) {
    const spent = await options.loadMonthSpendNano(limits.userId, month);
    await run(redis, scripts.seed, [limitKeys(limits, month).budget], [spent, month.end.getTime() + dayMs]);
  }

  /** One run of the entry script; seeds a missing budget counter from the database and runs it again. */
  async function runEnter(input: EnterInput & { rpm: "count" | "dry" | "skip" }): Promise<unknown[]> {
    const { limits, reserve, lock } = input;
    const budget = reserve?.budget ?? null;
    const keys = keyList(limits, budget?.month);
    // Unused slots get a key of the same user: every key of one script must share its slot.
    keys.push(input.lookup ?? keys[0] ?? "", lock?.key ?? keys[0] ?? "");
    const args = [
      clock(),
      windowMs,
      input.rpm,
      input.requestId,
      limits.userRpm,
      limits.keyRpm,
      limits.userTpm,
      limits.keyTpm,
      input.lookup ? "1" : "0",
      lock?.token ?? "",
      lock?.ttlMs ?? 0,
      reserve?.id ?? "",
      reserve?.tokens ?? 0,
      budget ? budget.limitNano : -1,
      budget ? budget.costNano : 0,
      holdMs,
      budget ? budget.month.end.getTime() + dayMs : 0,
    ];
    let result = list(await run(redis, scripts.enter, keys, args));
    if (Number(result[0]) === 4 && budget) {
      await seed(limits, budget.month);
      result = list(await run(redis, scripts.enter, keys, args));
      // Seeded and flushed again in between: refuse rather than count against nothing.
      if (Number(result[0]) === 4) throw new Error("the budget counter vanished twice while being seeded");
    }
    return result;
  }

  return {
    kind: "redis",

    async admit(limits, id, dryRun) {
      const result = await runEnter({ limits, rpm: dryRun ? "dry" : "count", requestId: id });
      const state = stateOf(result, 3);
      if (Number(result[0]) !== 5) return { ok: true, state } satisfies AdmitOutcome;
      return { ok: false, state, retryAfterMs: Math.max(0, Number(result[1] ?? 0)), scope: scopeOf(result[2]) };
    },

    async reserve(input: ReserveInput): Promise<ReserveOutcome> {
      const { limits, ...reserve } = input;
      const outcome = answer(await runEnter({ limits, rpm: "skip", requestId: "", reserve }));
      if (outcome.ok) return { ok: true, state: outcome.state };
      if (outcome.limit === "rpm") throw new Error("a reservation cannot be refused by rpm");
      return outcome;
    },

    async enter(input: EnterInput): Promise<EnterOutcome> {
      return answer(await runEnter({ ...input, rpm: "count" }));
    },
    async settle(input: SettleInput) {
      const { limits, budgetMonth } = input;
      const keys = keyList(limits, budgetMonth ?? undefined);
      const args = (force: boolean) => [
        input.id,
        input.tokens,
        input.costNano,
        limits.userTpm > 0 ? "1" : "0",
        limits.keyTpm > 0 ? "1" : "0",
        budgetMonth ? "1" : "0",
        force ? "1" : "0",
      ];
      const result = await run(redis, scripts.settle, keys, args(false));
      if (result === -1 && budgetMonth) {
        // The counter was lost (flush, restart without persistence) with this reservation's hold in it: seed
        // from the database and add this call's cost, which the database does not have yet.
        await seed(limits, budgetMonth);
        await run(redis, scripts.settle, keys, args(true));
      }
    },

    close() {},
  };
}

function list(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new Error(`unexpected answer from a limits script: ${String(value)}`);
  return value;
}

/** The entry script's answer as an outcome (its layout is documented with the script). */
function answer(result: unknown[]): EnterOutcome {
  const status = Number(result[0]);
  const state = stateOf(result, 3);
  const retryAfterMs = Math.max(0, Number(result[1] ?? 0));
  const scope = scopeOf(result[2]);
  switch (status) {
    case 1:
    case 6:
    case 7: {
      const lock = Number(result[10]);
      const cached = status === 6 ? String(result[11]) : undefined;
      return {
        ok: true,
        state,
        reserved: status === 1,
        cached,
        lock: lock === 1 ? "taken" : lock === 0 ? "busy" : "untried",
      };
    }
    case 5:
      return { ok: false, limit: "rpm", state, retryAfterMs, scope };
    case 0:
    case 2:
      return { ok: false, limit: "tpm", state, retryAfterMs, scope, tooLarge: status === 2 };
    case 3:
      return { ok: false, limit: "budget", state, committedNano: Number(result[9] ?? 0) };
    default:
      throw new Error(`unexpected status from the limits entry script: ${String(result[0])}`);
  }
}

function scopeOf(code: unknown): ScopeKind {
  return Number(code) === 2 ? "key" : "user";
}

/** Reads [requests limit, remaining, reset, tokens limit, remaining, reset] starting at `offset`. */
function stateOf(result: unknown[], offset: number): LimitState {
  const window = (at: number): WindowState | undefined => {
    const limit = Number(result[at] ?? -1);
    if (limit < 0) return undefined;
    return { limit, remaining: Number(result[at + 1] ?? 0), resetMs: Math.max(0, Number(result[at + 2] ?? 0)) };
  };
  const state: LimitState = {};
  const requests = window(offset);
  const tokens = window(offset + 3);
  if (requests) state.requests = requests;
  if (tokens) state.tokens = tokens;
  return state;
}
