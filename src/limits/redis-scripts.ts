/**
 * The Lua scripts of the Redis limit store (data, kept apart from the code that calls them). Each runs atomically:
 * a check and the count it guards happen together, whichever instance sends them.
 */
import { createHash } from "node:crypto";

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
 * The one round trip before an upstream call: admit (rpm), look up the cache, take the coalescing lock, reserve (tpm
 * and budget), each only when asked, in that order, stopping at the first that says no. All keys carry the user's
 * hash tag, so on a Redis Cluster this is one slot.
 *
 * KEYS: 1 user rpm log, 2 key rpm log, 3 user tpm log, 4 user tpm amounts, 5 key tpm log, 6 key tpm amounts,
 *       7 budget hash, 8 cache entry, 9 coalescing lock (8 and 9: any key of the user when not used)
 * ARGV: 1 now ('' = Redis TIME), 2 window ms, 3 rpm: 'count' | 'dry' (report, count nothing) | 'skip' (counted
 *       before: reported on a refusal only), 4 rpm member, 5 user rpm, 6 key rpm, 7 user tpm, 8 key tpm (0 = none),
 *       9 look up ('1'), 10 lock token ('' = no lock), 11 lock ttl ms, 12 reservation id ('' = reserve nothing),
 *       13 tokens, 14 budget limit nano (-1 = none), 15 cost nano, 16 hold ms, 17 budget key expiry (unix ms)
 * Returns { status, wait ms, waiting scope (1 user, 2 key), requests limit/remaining/reset, tokens
 *           limit/remaining/reset (-1 = no such window), committed nano, lock (1 taken, 0 held by another, -1 not
 *           asked), cached entry ('' = none) }
 * status: 1 through (admitted, and reserved when asked), 5 over rpm, 6 answered from the cache (nothing reserved),
 *         7 the lock is another's (nothing reserved), 0 over tpm, 2 larger than tpm, 3 over budget, 4 the budget
 *         needs seeding (nothing done).
 */
const enterScript = `${common}
local now = now_ms(ARGV[1])
local window = tonumber(ARGV[2])
local mode = ARGV[3]
local member = ARGV[4]
local rpm = { tonumber(ARGV[5]), tonumber(ARGV[6]) }
local tpm = { tonumber(ARGV[7]), tonumber(ARGV[8]) }
local lookup = ARGV[9] == '1'
local lock_token = ARGV[10]
local id = ARGV[12]
local reserving = id ~= ''
local need = tonumber(ARGV[13])
local budget_limit = tonumber(ARGV[14])
local cost = tonumber(ARGV[15])
local rlog = { KEYS[1], KEYS[2] }
local tlog = { KEYS[3], KEYS[5] }
local tamounts = { KEYS[4], KEYS[6] }

-- A budget counter that is gone (a flush, a restart without persistence) is seeded from the database first:
-- nothing is counted until it is.
if reserving and budget_limit >= 0 and redis.call('EXISTS', KEYS[7]) == 0 then return { 4 } end

local status, wait, wait_scope = 1, -1, 0
local counts = {}
if mode ~= 'skip' then
  for i = 1, 2 do
    if rpm[i] > 0 then
      redis.call('ZREMRANGEBYSCORE', rlog[i], '-inf', now - window)
      local count = redis.call('ZCARD', rlog[i])
      counts[i] = count
      if count >= rpm[i] and mode == 'count' then
        -- Room for one more once the (count - limit + 1)-th oldest entry leaves the window.
        local entry = redis.call('ZRANGE', rlog[i], count - rpm[i], count - rpm[i], 'WITHSCORES')
        local w = tonumber(entry[2]) + window - now
        if w > wait then wait, wait_scope = w, i end
      end
    end
  end
  if wait >= 0 then
    status = 5
  elseif mode == 'count' then
    for i = 1, 2 do
      if rpm[i] > 0 then
        redis.call('ZADD', rlog[i], now, member)
        redis.call('PEXPIRE', rlog[i], window)
        counts[i] = counts[i] + 1
      end
    end
  end
end

local cached = ''
if status == 1 and lookup then
  local value = redis.call('GET', KEYS[8])
  if value then cached, status = value, 6 end
end

local lock = -1
if status == 1 and lock_token ~= '' then
  if redis.call('SET', KEYS[9], lock_token, 'NX', 'PX', ARGV[11]) then lock = 1 else lock, status = 0, 7 end
end

-- Every limit is checked before anything is reserved, so a refusal holds nothing.
local totals = {}
local committed = -1
if status == 1 and reserving then
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

  if status == 1 and budget_limit >= 0 then
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
        redis.call('HSET', tamounts[i], id, ARGV[13], 'p:' .. id, 1)
        redis.call('HINCRBY', tamounts[i], 'total', ARGV[13])
        redis.call('PEXPIRE', tlog[i], window)
        redis.call('PEXPIRE', tamounts[i], window)
        totals[i] = totals[i] + need
      end
    end
    if budget_limit >= 0 then
      redis.call('HSET', KEYS[7], 'r:' .. id, ARGV[15] .. ':' .. string.format('%d', now + tonumber(ARGV[16])))
      redis.call('PEXPIREAT', KEYS[7], ARGV[17])
    end
  elseif lock == 1 then
    -- Refused: the lock this call just took would only hold up identical requests.
    redis.call('DEL', KEYS[9])
    lock = -1
  end
end

local counted = mode == 'count' and status ~= 5
local reserved = reserving and (status == 1)
local requests = { -1, -1, -1 }
for i = 1, 2 do
  if rpm[i] > 0 then
    if mode ~= 'skip' then
      -- Just counted, this request is the newest entry: its window resets a full window from now.
      local reset = counted and window or newest_reset(rlog[i], now, window)
      requests = tighter(requests, rpm[i], math.max(0, rpm[i] - counts[i]), reset)
    elseif not reserved then
      -- Counted before this call: its window is the admission's, unless a refusal needs it for its headers.
      local count = redis.call('ZCOUNT', rlog[i], '(' .. string.format('%d', now - window), '+inf')
      requests = tighter(requests, rpm[i], math.max(0, rpm[i] - count), newest_reset(rlog[i], now, window))
    end
  end
end
local tokens = { -1, -1, -1 }
for i = 1, 2 do
  if tpm[i] > 0 then
    local total = totals[i] or tpm_total(tlog[i], tamounts[i], now, window)
    -- Just logged, this reservation is the newest entry: the window resets a full window from now.
    local reset = reserved and window or newest_reset(tlog[i], now, window)
    tokens = tighter(tokens, tpm[i], math.max(0, tpm[i] - total), reset)
  end
end
return { status, math.ceil(wait), wait_scope, requests[1], requests[2], math.ceil(requests[3]),
  tokens[1], tokens[2], math.ceil(tokens[3]), committed, lock, cached }
`;

/**
 * KEYS: 1–7 as for enter. ARGV: 1 reservation id, 2 tokens used, 3 cost nano, 4 user tpm held ('1'),
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

export interface Script {
  source: string;
  sha: string;
}

const script = (source: string): Script => ({ source, sha: createHash("sha1").update(source).digest("hex") });

export const scripts = {
  enter: script(enterScript),
  settle: script(settleScript),
  seed: script(seedScript),
};
