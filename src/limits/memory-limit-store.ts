import {
  type AdmitOutcome,
  type BudgetMonth,
  type EnterOutcome,
  budgetMonthOf,
  type LimitState,
  type LimitStore,
  type LoadMonthSpendNano,
  type ReserveInput,
  type ReserveOutcome,
  type ScopeKind,
  type ScopeLimits,
  type SettleInput,
  tighter,
  type WindowState,
} from "./limit-store.ts";

/**
 * The same sliding-window logs and budget holds as the Redis store, for one process: used when no Redis is
 * configured, and by the limiter while Redis is failing. Every check-and-count runs synchronously (no await
 * between them), which is what makes it atomic here. The only await is seeding a month's budget from the
 * database, done before the check.
 */

interface TokenEntry {
  at: number;
  tokens: number;
  pending: boolean;
}

interface TokenLog {
  /** Reservation ids in insertion (= time) order. */
  order: string[];
  entries: Map<string, TokenEntry>;
  total: number;
}

interface Budget {
  spentNano: number;
  holds: Map<string, { nano: number; expiresAt: number }>;
}

export interface MemoryLimitStoreOptions {
  now: () => number;
  windowMs: number;
  holdMs: number;
  loadMonthSpendNano: LoadMonthSpendNano;
  /** How often idle logs and past months are swept out. Default 60 s. */
  sweepIntervalMs?: number;
}

export function createMemoryLimitStore(options: MemoryLimitStoreOptions): LimitStore {
  const store = createStore(options);
  return {
    ...store,
    // Admit, then reserve: with no round trip to save, the lookup and the lock are the caller's.
    async enter(input): Promise<EnterOutcome> {
      const admitted = await store.admit(input.limits, input.requestId, false);
      if (!admitted.ok) return { ...admitted, limit: "rpm" };
      if (!input.reserve)
        return { ok: true, state: admitted.state, reserved: false, cached: undefined, lock: "untried" };
      const reserved = await store.reserve({ limits: input.limits, ...input.reserve });
      if (!reserved.ok) return reserved;
      const state = { ...admitted.state, ...reserved.state };
      return { ok: true, state, reserved: true, cached: undefined, lock: "untried" };
    },
  };
}

function createStore(options: MemoryLimitStoreOptions): Omit<LimitStore, "enter"> {
  const { now, windowMs, holdMs } = options;
  const requestLogs = new Map<string, number[]>();
  const tokenLogs = new Map<string, TokenLog>();
  const budgets = new Map<string, Budget>();
  const seeding = new Map<string, Promise<void>>();

  const userScope = (limits: ScopeLimits) => `u:${limits.userId}`;
  const keyScope = (limits: ScopeLimits) => `k:${limits.keyId ?? "-"}`;

  function requestLog(scope: string, at: number): number[] {
    const log = requestLogs.get(scope) ?? [];
    let expired = 0;
    while (expired < log.length && (log[expired] ?? 0) <= at - windowMs) expired++;
    if (expired) log.splice(0, expired);
    requestLogs.set(scope, log);
    return log;
  }

  function tokenLog(scope: string, at: number): TokenLog {
    let log = tokenLogs.get(scope);
    if (!log) {
      log = { order: [], entries: new Map(), total: 0 };
      tokenLogs.set(scope, log);
    }
    let expired = 0;
    for (const id of log.order) {
      const entry = log.entries.get(id);
      if (entry && entry.at > at - windowMs) break;
      if (entry) log.total -= entry.tokens;
      log.entries.delete(id);
      expired++;
    }
    if (expired) log.order.splice(0, expired);
    return log;
  }

  const newestReset = (newestAt: number | undefined, at: number) =>
    newestAt === undefined ? 0 : Math.max(0, newestAt + windowMs - at);

  function requestsState(limits: ScopeLimits, at: number): WindowState | undefined {
    let state: WindowState | undefined;
    for (const [limit, scope] of [
      [limits.userRpm, userScope(limits)],
      [limits.keyRpm, keyScope(limits)],
    ] as const) {
      if (limit <= 0) continue;
      const log = requestLog(scope, at);
      const window = { limit, remaining: Math.max(0, limit - log.length), resetMs: newestReset(log.at(-1), at) };
      state = tighter(state, window);
    }
    return state;
  }

  function tokensState(limits: ScopeLimits, at: number): WindowState | undefined {
    let state: WindowState | undefined;
    for (const [limit, scope] of [
      [limits.userTpm, userScope(limits)],
      [limits.keyTpm, keyScope(limits)],
    ] as const) {
      if (limit <= 0) continue;
      const log = tokenLog(scope, at);
      const newest = log.entries.get(log.order.at(-1) ?? "");
      const window = { limit, remaining: Math.max(0, limit - log.total), resetMs: newestReset(newest?.at, at) };
      state = tighter(state, window);
    }
    return state;
  }

  const stateOf = (limits: ScopeLimits, at: number): LimitState => {
    const state: LimitState = {};
    const requests = requestsState(limits, at);
    const tokens = tokensState(limits, at);
    if (requests) state.requests = requests;
    if (tokens) state.tokens = tokens;
    return state;
  };

  async function budgetOf(userId: string, month: BudgetMonth): Promise<Budget> {
    const name = `${userId}:${month.key}`;
    let budget = budgets.get(name);
    if (budget) return budget;
    let pending = seeding.get(name);
    if (!pending) {
      pending = options
        .loadMonthSpendNano(userId, month)
        .then((spentNano) => {
          if (!budgets.has(name)) budgets.set(name, { spentNano, holds: new Map() });
        })
        .finally(() => seeding.delete(name));
      seeding.set(name, pending);
    }
    await pending;
    budget = budgets.get(name);
    if (!budget) throw new Error(`budget ${name} was not seeded`);
    return budget;
  }

  function committed(budget: Budget, at: number): number {
    let total = budget.spentNano;
    for (const [id, hold] of budget.holds) {
      // A hold past its expiry belongs to a call that never settled: release it.
      if (hold.expiresAt <= at) budget.holds.delete(id);
      else total += hold.nano;
    }
    return total;
  }

  // Pruning on read keeps active scopes small; the sweep drops scopes nobody has used for a window.
  const sweep = setInterval(() => {
    const at = now();
    for (const scope of [...requestLogs.keys()]) if (requestLog(scope, at).length === 0) requestLogs.delete(scope);
    for (const scope of [...tokenLogs.keys()]) if (tokenLog(scope, at).order.length === 0) tokenLogs.delete(scope);
    const month = budgetMonthOf(at).key;
    for (const [name, budget] of budgets) {
      if (!name.endsWith(`:${month}`) && committed(budget, at) === budget.spentNano) budgets.delete(name);
    }
  }, options.sweepIntervalMs ?? 60_000);
  sweep.unref();

  return {
    kind: "memory",

    async admit(limits, _id, dryRun) {
      const at = now();
      let retryAfterMs = -1;
      let scope: ScopeKind = "user";
      for (const [limit, name, kind] of [
        [limits.userRpm, userScope(limits), "user"],
        [limits.keyRpm, keyScope(limits), "key"],
      ] as const) {
        if (limit <= 0 || dryRun) continue;
        const log = requestLog(name, at);
        if (log.length < limit) continue;
        // Room for one more once the (count - limit + 1)-th oldest entry leaves the window.
        const wait = (log[log.length - limit] ?? at) + windowMs - at;
        if (wait > retryAfterMs) {
          retryAfterMs = wait;
          scope = kind;
        }
      }
      if (retryAfterMs >= 0) return { ok: false, state: stateOf(limits, at), retryAfterMs, scope };
      if (!dryRun) {
        if (limits.userRpm > 0) requestLog(userScope(limits), at).push(at);
        if (limits.keyRpm > 0) requestLog(keyScope(limits), at).push(at);
      }
      return { ok: true, state: stateOf(limits, at) } satisfies AdmitOutcome;
    },

    async reserve(input: ReserveInput): Promise<ReserveOutcome> {
      const { limits } = input;
      // The only await, before the check: afterwards nothing yields until the reservation is counted.
      const budget = input.budget ? await budgetOf(limits.userId, input.budget.month) : undefined;
      const at = now();

      let refusal: { retryAfterMs: number; scope: ScopeKind; tooLarge: boolean } | undefined;
      for (const [limit, name, kind] of [
        [limits.userTpm, userScope(limits), "user"],
        [limits.keyTpm, keyScope(limits), "key"],
      ] as const) {
        if (limit <= 0) continue;
        if (input.tokens > limit) {
          refusal = { retryAfterMs: windowMs, scope: kind, tooLarge: true };
          continue;
        }
        const log = tokenLog(name, at);
        if (log.total + input.tokens <= limit || refusal?.tooLarge) continue;
        const excess = log.total + input.tokens - limit;
        let freed = 0;
        let wait = windowMs;
        for (const id of log.order) {
          const entry = log.entries.get(id);
          freed += entry?.tokens ?? 0;
          if (freed >= excess) {
            wait = (entry?.at ?? at) + windowMs - at;
            break;
          }
        }
        if (!refusal || wait > refusal.retryAfterMs) refusal = { retryAfterMs: wait, scope: kind, tooLarge: false };
      }
      if (refusal) return { ok: false, limit: "tpm", state: stateOf(limits, at), ...refusal };

      if (budget && input.budget) {
        const used = committed(budget, at);
        if (used >= input.budget.limitNano || used + input.budget.costNano > input.budget.limitNano) {
          return { ok: false, limit: "budget", state: stateOf(limits, at), committedNano: used };
        }
        budget.holds.set(input.id, { nano: input.budget.costNano, expiresAt: at + holdMs });
      }
      for (const [limit, name] of [
        [limits.userTpm, userScope(limits)],
        [limits.keyTpm, keyScope(limits)],
      ] as const) {
        if (limit <= 0) continue;
        const log = tokenLog(name, at);
        log.order.push(input.id);
        log.entries.set(input.id, { at, tokens: input.tokens, pending: true });
        log.total += input.tokens;
      }
      return { ok: true, state: stateOf(limits, at) };
    },

    async settle(input: SettleInput) {
      const { limits } = input;
      const at = now();
      for (const [held, name] of [
        [limits.userTpm > 0, userScope(limits)],
        [limits.keyTpm > 0, keyScope(limits)],
      ] as const) {
        if (!held) continue;
        const entry = tokenLog(name, at).entries.get(input.id);
        if (!entry?.pending) continue;
        entry.pending = false;
        const log = tokenLogs.get(name);
        if (log) log.total += input.tokens - entry.tokens;
        entry.tokens = input.tokens;
      }
      if (input.budgetMonth) {
        const budget = await budgetOf(limits.userId, input.budgetMonth);
        if (budget.holds.delete(input.id)) budget.spentNano += input.costNano;
      }
    },

    close() {
      clearInterval(sweep);
    },
  };
}
