import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type {
  AdmitOutcome,
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
 * Key layout (all with TTLs):
 *   arh:limits:rpm:{u|k}:<id>          ZSET  member = request id, score = ms; PEXPIRE window
 *   arh:limits:tpm:{u|k}:<id>          ZSET  member = reservation id, score = ms; PEXPIRE window
 *   arh:limits:tpm:{u|k}:<id>:amounts  HASH  <reservation id> = tokens, p:<reservation id> = 1 until settled,
 *                                            total = sum of the amounts in the window
 *   arh:budget:<userId>:<YYYY-MM>      HASH  spent = nano-dollars settled this month (seeded from the database
 *                                            when missing), r:<reservation id> = "<nano>:<hold expiry ms>";
 *                                            PEXPIREAT a day after the month ends
 * The scripts take their time from Redis (TIME) unless a clock is injected, so instances with skewed clocks
 * still share one timeline. Every key a script touches is passed in KEYS; a Redis Cluster would need the keys of
 * one user in one slot, which this layout (fixed by the contract) does not give.
 */

const common = `
local function now_ms(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function newest_reset(key, now, window)
  local entry = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #entry == 0 then return 0 end
  return math.max(0, tonumber(entry[2]) + window - now)
end

-- Tokens in the window: drops expired reservations from the log and their amounts from the total. The amounts
-- are read and deleted a slice at a time (one HMGET, one HDEL), not per entry: every call into Redis from a
-- script costs about as much as the command itself, and under load each check finds entries that just expired.
local function tpm_total(zkey, hkey, now, window)
  local expired = redis.call('ZRANGEBYSCORE', zkey, '-inf', now - window)
  if #expired > 0 then
    local freed = 0
    for first = 1, #expired, 500 do
      local ids, fields = {}, {}
      for j = first, math.min(first + 499, #expired) do
        ids[#ids + 1] = expired[j]
        fields[#fields + 1] = expired[j]
        fields[#fields + 1] = 'p:' .. expired[j]
      end
      for _, amount in ipairs(redis.call('HMGET', hkey, unpack(ids))) do
        freed = freed + (tonumber(amount) or 0)
      end
      redis.call('HDEL', hkey, unpack(fields))
    end
    redis.call('ZREMRANGEBYSCORE', zkey, '-inf', now - window)
    -- Lua writes -0 as "-0", which HINCRBY refuses: skip the call when nothing was freed.
    if freed ~= 0 then redis.call('HINCRBY', hkey, 'total', -freed) end
  end
  if redis.call('ZCARD', zkey) == 0 then
    -- An empty log means no tokens: resetting here heals a total left behind by a partial flush.
    redis.call('DEL', hkey)
    return 0
  end
  return math.max(0, tonumber(redis.call('HGET', hkey, 'total')) or 0)
end

-- Picks the window with the least room left; on a tie the later reset.
local function tighter(state, limit, remaining, reset)
  if state[1] < 0 or remaining < state[2] or (remaining == state[2] and reset > state[3]) then
    return { limit, remaining, reset }
  end
  return state
end
`;

/**
 * KEYS: 1 user rpm log, 2 key rpm log, 3 user tpm log, 4 user tpm amounts, 5 key tpm log, 6 key tpm amounts
 * ARGV: 1 now ('' = Redis TIME), 2 window ms, 3 member, 4 dry run ('1'), 5 user rpm, 6 key rpm, 7 user tpm,
 *       8 key tpm (0 = none)
 * Returns { admitted, wait ms, waiting scope (1 user, 2 key), requests limit, remaining, reset ms,
 *           tokens limit, remaining, reset ms } (-1 = no such window)
 */
const admitScript = `${common}
local now = now_ms(ARGV[1])
local window = tonumber(ARGV[2])
local member = ARGV[3]
local dry = ARGV[4] == '1'
local rpm = { tonumber(ARGV[5]), tonumber(ARGV[6]) }
local tpm = { tonumber(ARGV[7]), tonumber(ARGV[8]) }
local rlog = { KEYS[1], KEYS[2] }
local tlog = { KEYS[3], KEYS[5] }
local tamounts = { KEYS[4], KEYS[6] }

local counts = {}
local wait, wait_scope = -1, 0
for i = 1, 2 do
  if rpm[i] > 0 then
    redis.call('ZREMRANGEBYSCORE', rlog[i], '-inf', now - window)
    local count = redis.call('ZCARD', rlog[i])
    counts[i] = count
    if count >= rpm[i] and not dry then
      -- Room for one more once the (count - limit + 1)-th oldest entry leaves the window.
      local entry = redis.call('ZRANGE', rlog[i], count - rpm[i], count - rpm[i], 'WITHSCORES')
      local w = tonumber(entry[2]) + window - now
      if w > wait then wait, wait_scope = w, i end
    end
  end
end
local admitted = wait < 0
if admitted and not dry then
  for i = 1, 2 do
    if rpm[i] > 0 then
      redis.call('ZADD', rlog[i], now, member)
      redis.call('PEXPIRE', rlog[i], window)
      counts[i] = counts[i] + 1
    end
  end
end
local requests = { -1, -1, -1 }
for i = 1, 2 do
  if rpm[i] > 0 then
    -- Just counted, this request is the newest entry: its window resets a full window from now.
    local reset = (admitted and not dry) and window or newest_reset(rlog[i], now, window)
    requests = tighter(requests, rpm[i], math.max(0, rpm[i] - counts[i]), reset)
  end
end
local tokens = { -1, -1, -1 }
for i = 1, 2 do
  if tpm[i] > 0 then
    local total = tpm_total(tlog[i], tamounts[i], now, window)
    tokens = tighter(tokens, tpm[i], math.max(0, tpm[i] - total), newest_reset(tlog[i], now, window))
  end
end
return { admitted and 1 or 0, math.ceil(wait), wait_scope, requests[1], requests[2], math.ceil(requests[3]),
  tokens[1], tokens[2], math.ceil(tokens[3]) }
`;

/**
 * KEYS: 1 user rpm log, 2 key rpm log, 3 user tpm log, 4 user tpm amounts, 5 key tpm log, 6 key tpm amounts,
 *       7 budget hash
 * ARGV: 1 now, 2 window ms, 3 reservation id, 4 tokens, 5 user rpm, 6 key rpm, 7 user tpm, 8 key tpm,
 *       9 budget limit nano (-1 = none), 10 cost nano, 11 hold ms, 12 budget key expiry (unix ms)
 * Returns { status (1 ok, 0 over tpm, 2 larger than tpm, 3 over budget, 4 budget needs seeding), wait ms,
 *           waiting scope, requests limit/remaining/reset, tokens limit/remaining/reset, committed nano }
 */
const reserveScript = `${common}
local now = now_ms(ARGV[1])
local window = tonumber(ARGV[2])
local id = ARGV[3]
local need = tonumber(ARGV[4])
local rpm = { tonumber(ARGV[5]), tonumber(ARGV[6]) }
local tpm = { tonumber(ARGV[7]), tonumber(ARGV[8]) }
local budget_limit = tonumber(ARGV[9])
local cost = tonumber(ARGV[10])
local rlog = { KEYS[1], KEYS[2] }
local tlog = { KEYS[3], KEYS[5] }
local tamounts = { KEYS[4], KEYS[6] }

-- Every limit is checked before anything is counted, so a refusal leaves no trace.
local status, wait, wait_scope = 1, -1, 0
local totals = {}
for i = 1, 2 do
  if tpm[i] > 0 then
    local total = tpm_total(tlog[i], tamounts[i], now, window)
    totals[i] = total
    if need > tpm[i] then
      status, wait, wait_scope = 2, window, i
    elseif total + need > tpm[i] and status ~= 2 then
      -- Room once enough of the oldest reservations leave the window.
      local excess = total + need - tpm[i]
      local entries = redis.call('ZRANGE', tlog[i], 0, -1, 'WITHSCORES')
      local freed, w = 0, window
      for j = 1, #entries, 2 do
        freed = freed + (tonumber(redis.call('HGET', tamounts[i], entries[j])) or 0)
        if freed >= excess then
          w = tonumber(entries[j + 1]) + window - now
          break
        end
      end
      if w > wait then status, wait, wait_scope = 0, w, i end
    end
  end
end

local committed = -1
if status == 1 and budget_limit >= 0 then
  if redis.call('EXISTS', KEYS[7]) == 0 then return { 4 } end
  local fields = redis.call('HGETALL', KEYS[7])
  local spent, reserved = 0, 0
  for j = 1, #fields, 2 do
    local field = fields[j]
    if field == 'spent' then
      spent = tonumber(fields[j + 1]) or 0
    elseif string.sub(field, 1, 2) == 'r:' then
      local amount, expires = string.match(fields[j + 1], '^(%d+):(%d+)$')
      -- A hold past its expiry belongs to a call that never settled (a crashed instance): release it.
      if amount == nil or tonumber(expires) <= now then
        redis.call('HDEL', KEYS[7], field)
      else
        reserved = reserved + tonumber(amount)
      end
    end
  end
  committed = spent + reserved
  if committed >= budget_limit or committed + cost > budget_limit then status = 3 end
end

if status == 1 then
  for i = 1, 2 do
    if tpm[i] > 0 then
      redis.call('ZADD', tlog[i], now, id)
      redis.call('HSET', tamounts[i], id, ARGV[4], 'p:' .. id, 1)
      redis.call('HINCRBY', tamounts[i], 'total', ARGV[4])
      redis.call('PEXPIRE', tlog[i], window)
      redis.call('PEXPIRE', tamounts[i], window)
      totals[i] = totals[i] + need
    end
  end
  if budget_limit >= 0 then
    redis.call('HSET', KEYS[7], 'r:' .. id, ARGV[10] .. ':' .. string.format('%d', now + tonumber(ARGV[11])))
    redis.call('PEXPIREAT', KEYS[7], ARGV[12])
  end
end

-- A reservation that went through reports its tokens window only: the request was just admitted, and the
-- answer's requests window is the admission's. A refusal's headers need both.
local requests = { -1, -1, -1 }
if status ~= 1 then
  for i = 1, 2 do
    if rpm[i] > 0 then
      local count = redis.call('ZCOUNT', rlog[i], '(' .. string.format('%d', now - window), '+inf')
      requests = tighter(requests, rpm[i], math.max(0, rpm[i] - count), newest_reset(rlog[i], now, window))
    end
  end
end
local tokens = { -1, -1, -1 }
for i = 1, 2 do
  if tpm[i] > 0 then
    -- Just logged, this reservation is the newest entry: the window resets a full window from now.
    local reset = status == 1 and window or newest_reset(tlog[i], now, window)
    tokens = tighter(tokens, tpm[i], math.max(0, tpm[i] - totals[i]), reset)
  end
end
return { status, math.ceil(wait), wait_scope, requests[1], requests[2], math.ceil(requests[3]),
  tokens[1], tokens[2], math.ceil(tokens[3]), committed }
`;

/**
 * KEYS: as for reserve. ARGV: 1 reservation id, 2 tokens used, 3 cost nano, 4 user tpm held ('1'),
 *       5 key tpm held, 6 budget held, 7 force (the budget key vanished and was seeded again since)
 * The pending markers (p:<id>, r:<id>) are what make it idempotent: each is removed by the first settle.
 * Returns 1, or -1 when the budget hash is missing and must be seeded first.
 */
const settleScript = `
local id = ARGV[1]
local force = ARGV[7] == '1'
if ARGV[6] == '1' and not force and redis.call('EXISTS', KEYS[7]) == 0 then return -1 end
local held = { ARGV[4], ARGV[5] }
local amounts = { KEYS[4], KEYS[6] }
local tokens = tonumber(ARGV[2])
for i = 1, 2 do
  if held[i] == '1' and redis.call('HDEL', amounts[i], 'p:' .. id) == 1 then
    local reserved = tonumber(redis.call('HGET', amounts[i], id)) or 0
    redis.call('HSET', amounts[i], id, ARGV[2])
    redis.call('HINCRBY', amounts[i], 'total', string.format('%d', tokens - reserved))
  end
end
if ARGV[6] == '1' then
  if redis.call('HDEL', KEYS[7], 'r:' .. id) == 1 or force then
    redis.call('HINCRBY', KEYS[7], 'spent', ARGV[3])
  end
end
return 1
`;

/** KEYS: 1 budget hash. ARGV: 1 spent nano from the database, 2 expiry (unix ms). The first seeder wins. */
const seedScript = `
if redis.call('HSETNX', KEYS[1], 'spent', ARGV[1]) == 1 then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1
`;

interface Script {
  source: string;
  sha: string;
}

const script = (source: string): Script => ({ source, sha: createHash("sha1").update(source).digest("hex") });
const scripts = {
  admit: script(admitScript),
  reserve: script(reserveScript),
  settle: script(settleScript),
  seed: script(seedScript),
};

/** EVALSHA, and EVAL once when Redis does not know the script yet (a restart or SCRIPT FLUSH forgets them). */
async function run(redis: Redis, { source, sha }: Script, keys: string[], args: Array<string | number>) {
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
  redis: Redis;
  /** Injected clock (tests); by default the scripts read Redis's own clock. */
  now?: () => number;
  windowMs: number;
  /** How long an unsettled budget reservation holds its amount before it is released. */
  holdMs: number;
  loadMonthSpendNano: LoadMonthSpendNano;
}

/** Key names, exported for tests that clean up after themselves. */
export function limitKeys(limits: Pick<ScopeLimits, "userId" | "keyId">, month?: BudgetMonth) {
  const user = `u:${limits.userId}`;
  const key = `k:${limits.keyId ?? "-"}`;
  return {
    userRpm: `arh:limits:rpm:${user}`,
    keyRpm: `arh:limits:rpm:${key}`,
    userTpm: `arh:limits:tpm:${user}`,
    userTpmAmounts: `arh:limits:tpm:${user}:amounts`,
    keyTpm: `arh:limits:tpm:${key}`,
    keyTpmAmounts: `arh:limits:tpm:${key}:amounts`,
    budget: `arh:budget:${limits.userId}:${month?.key ?? "-"}`,
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

  return {
    kind: "redis",

    async admit(limits, id, dryRun) {
      const result = numbers(
        await run(redis, scripts.admit, keyList(limits).slice(0, 6), [
          clock(),
          windowMs,
          id,
          dryRun ? "1" : "0",
          limits.userRpm,
          limits.keyRpm,
          limits.userTpm,
          limits.keyTpm,
        ]),
      );
      const state = stateOf(result, 3);
      if (result[0] === 1) return { ok: true, state } satisfies AdmitOutcome;
      return { ok: false, state, retryAfterMs: Math.max(0, result[1] ?? 0), scope: scopeOf(result[2]) };
    },

    async reserve(input: ReserveInput): Promise<ReserveOutcome> {
      const { limits, budget } = input;
      const args = [
        clock(),
        windowMs,
        input.id,
        input.tokens,
        limits.userRpm,
        limits.keyRpm,
        limits.userTpm,
        limits.keyTpm,
        budget ? budget.limitNano : -1,
        budget ? budget.costNano : 0,
        holdMs,
        budget ? budget.month.end.getTime() + dayMs : 0,
      ];
      const keys = keyList(limits, budget?.month);
      let result = numbers(await run(redis, scripts.reserve, keys, args));
      if (result[0] === 4 && budget) {
        await seed(limits, budget.month);
        result = numbers(await run(redis, scripts.reserve, keys, args));
        // Seeded and flushed again in between: refuse rather than count against nothing.
        if (result[0] === 4) throw new Error("the budget counter vanished twice while being seeded");
      }
      const state = stateOf(result, 3);
      switch (result[0]) {
        case 1:
          return { ok: true, state };
        case 0:
        case 2:
          return {
            ok: false,
            limit: "tpm",
            state,
            retryAfterMs: Math.max(0, result[1] ?? 0),
            scope: scopeOf(result[2]),
            tooLarge: result[0] === 2,
          };
        default:
          return { ok: false, limit: "budget", state, committedNano: result[9] ?? 0 };
      }
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

function numbers(value: unknown): number[] {
  if (!Array.isArray(value)) throw new Error(`unexpected answer from a limits script: ${String(value)}`);
  return value.map((item) => Number(item));
}

function scopeOf(code: number | undefined): ScopeKind {
  return code === 2 ? "key" : "user";
}

/** Reads [requests limit, remaining, reset, tokens limit, remaining, reset] starting at `offset`. */
function stateOf(result: number[], offset: number): LimitState {
  const window = (at: number): WindowState | undefined => {
    const limit = result[at] ?? -1;
    if (limit < 0) return undefined;
    return { limit, remaining: result[at + 1] ?? 0, resetMs: Math.max(0, result[at + 2] ?? 0) };
  };
  const state: LimitState = {};
  const requests = window(offset);
  const tokens = window(offset + 3);
  if (requests) state.requests = requests;
  if (tokens) state.tokens = tokens;
  return state;
}
