"""The Lua scripts of the Redis gate backend: the sliding-window log of ``window.py`` in Redis.

Each bucket is three keys: ``H`` (hash: ``limit cap span hold f0 paced lsum
fsum``), ``L`` (sorted set of released admissions, scored by the time they
count from) and ``F`` (sorted set of admissions in flight, scored by their
admission time). Members are ``"<entry id>:<cost>"``. Times are the Redis
server's clock (``TIME``, seconds since ``EPOCH_BASE``), so every process
agrees on them. Semantics follow :class:`okx_sync.gate.window.Window` line for
line: capacity ``ceil(headroom * limit)`` per span ``window * capacity /
(headroom * limit)``; an admission counts from admission until its release
plus a span; an admission never released counts as released ``HOLD`` seconds
after it was admitted; the pacer lets ``burst`` of the capacity go back to
back, then spaces admissions ``span / cap`` apart; a penalty holds the bucket,
then restarts it at ``penalty_factor`` of its ceiling and recovers linearly
over ``recovery`` windows. Every key expires once nothing in it can matter.

``ADMIT`` checks every bucket a call draws on and records the admission on all
of them, or on none, in one atomic step. Pure data (strings); no I/O here.
"""

from __future__ import annotations

__all__ = ["COMMON", "ADMIT", "RELEASE", "PENALISE", "SNAPSHOT", "EPOCH_BASE"]

EPOCH_BASE = 1_700_000_000  # keeps microseconds exact in a double

COMMON = r"""
local HOLD = 30.0
local NEG = -1e18
local EPS = 1e-9
local function now_s()
  local t = redis.call('TIME')
  return (tonumber(t[1]) - 1700000000) + tonumber(t[2]) / 1e6
end
local function f6(x) return string.format('%.6f', x) end
local function cost_of(m) return tonumber(string.match(m, ':(%d+)$')) end
local function load(h, limit, window, headroom, burst, recovery)
  local v = redis.call('HMGET', h, 'hold', 'f0', 'paced', 'lsum', 'fsum')
  local b = {limit = tonumber(limit), window = tonumber(window)}
  local scaled = b.limit * headroom
  b.cap = math.max(1, math.ceil(scaled - EPS))
  b.span = b.window * b.cap / scaled
  b.hold = tonumber(v[1]) or NEG
  b.f0 = tonumber(v[2]) or 1.0
  b.paced = tonumber(v[3]) or NEG
  b.lsum = tonumber(v[4]) or 0
  b.fsum = tonumber(v[5]) or 0
  b.burst = burst
  b.recovery = recovery * b.window
  return b
end
local function prune(b, L, F, now)
  if b.fsum > 0 then
    local old = redis.call('ZRANGEBYSCORE', F, '-inf', f6(now - HOLD), 'WITHSCORES')
    for i = 1, #old, 2 do
      local c = cost_of(old[i])
      redis.call('ZREM', F, old[i])
      redis.call('ZADD', L, f6(tonumber(old[i + 1]) + HOLD), old[i])
      b.fsum = b.fsum - c
      b.lsum = b.lsum + c
    end
  end
  if b.lsum > 0 then
    local gone = redis.call('ZRANGEBYSCORE', L, '-inf', f6(now - b.span))
    for i = 1, #gone do b.lsum = b.lsum - cost_of(gone[i]) end
    if #gone > 0 then redis.call('ZREMRANGEBYSCORE', L, '-inf', f6(now - b.span)) end
  end
  return b.lsum + b.fsum
end
local function factor(b, now)
  if b.f0 >= 1.0 then return 1.0 end
  if now < b.hold then return 0.0 end
  local v = b.f0 + (1.0 - b.f0) * (now - b.hold) / b.recovery
  if v >= 1.0 then b.f0 = 1.0; return 1.0 end
  return v
end
local function cap(b, now)
  if now < b.hold then return 0 end
  local f = factor(b, now)
  if f >= 1.0 then return b.cap end
  return math.max(1, math.floor(b.cap * f + EPS))
end
local function pace_start(b, used, now, c, cost, reserved)
  local burst = math.max(1, math.floor(c * b.burst + EPS))
  if used + reserved + cost <= burst and b.f0 >= 1.0 then return now end
  return b.paced
end
local function fits(b, used, now, cost, reserved)
  local c = cap(b, now)
  if c <= 0 then return false end
  local busy = used + reserved
  if not (busy + cost <= c or (busy == 0 and cost > c)) then return false end
  return pace_start(b, used, now, c, cost, reserved) <= now + EPS
end
local function next_change(b, L, F, used, now, cost, reserved)
  if now < b.hold then return b.hold end
  local c = cap(b, now)
  local best = 1e18
  local allowed = 0
  if cost <= c then allowed = c - cost end
  local excess = used + reserved - allowed
  if excess > 0 then
    local freed = 0
    local log = redis.call('ZRANGE', L, 0, -1, 'WITHSCORES')
    for i = 1, #log, 2 do
      freed = freed + cost_of(log[i])
      if freed >= excess then best = math.min(best, tonumber(log[i + 1]) + b.span); break end
    end
    if b.fsum > 0 then
      local first = redis.call('ZRANGE', F, 0, 0, 'WITHSCORES')
      if #first > 0 then best = math.min(best, tonumber(first[2]) + HOLD) end
      -- another process's release frees room a span after it, at the earliest
      best = math.min(best, now + b.span)
    end
  end
  local p = pace_start(b, used, now, c, cost, reserved)
  if p > now + EPS then best = math.min(best, p) end
  if b.f0 < 1.0 and c < b.cap then
    local step = ((c + 1) / b.cap - b.f0) / (1.0 - b.f0)
    best = math.min(best, b.hold + step * b.recovery + EPS)
  end
  return math.max(best, now + EPS)
end
local function save(b, h, L, F, ttl)
  redis.call('HSET', h, 'limit', b.limit, 'window', f6(b.window), 'hold', f6(b.hold),
    'f0', f6(b.f0), 'paced', f6(b.paced), 'lsum', b.lsum, 'fsum', b.fsum)
  local ms = math.ceil((b.span + HOLD + b.recovery + ttl) * 1000)
  redis.call('PEXPIRE', h, ms)
  redis.call('PEXPIRE', L, ms)
  redis.call('PEXPIRE', F, ms)
end
"""

# KEYS: uid-map key, then H, L, F per bucket, then the entry-id counter.
# ARGV: headroom, burst, recovery_windows, ttl_extra_s, then limit, window, cost,
# reserved per bucket. Returns {entry id, uid} or {0, uid, key index, delay_s, ...}.
ADMIT = (
    COMMON
    + r"""
local headroom, burst, recovery, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3]), tonumber(ARGV[4])
local uid = redis.call('GET', KEYS[1]) or ''
local n = (#KEYS - 2) / 3
local now = now_s()
local buckets, used, blocked = {}, {}, {}
for i = 1, n do
  local a = 4 + (i - 1) * 4
  local h, L, F = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local b = load(h, ARGV[a + 1], ARGV[a + 2], headroom, burst, recovery)
  b.cost, b.reserved = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  buckets[i] = b
  used[i] = prune(b, L, F, now)
  if not fits(b, used[i], now, b.cost, b.reserved) then
    blocked[#blocked + 1] = i
    blocked[#blocked + 1] = f6(next_change(b, L, F, used[i], now, b.cost, b.reserved) - now)
  end
end
if #blocked > 0 then
  for i = 1, n do save(buckets[i], KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1], ttl) end
  local out = {0, uid}
  for _, v in ipairs(blocked) do out[#out + 1] = v end
  return out
end
local eid = redis.call('INCR', KEYS[#KEYS])
for i = 1, n do
  local b = buckets[i]
  local c = math.max(1, cap(b, now))
  b.paced = math.max(b.paced, now) + b.cost * b.span / c
  redis.call('ZADD', KEYS[3 * i + 1], f6(now), eid .. ':' .. b.cost)
  b.fsum = b.fsum + b.cost
  save(b, KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1], ttl)
end
return {eid, uid}
"""
)

# KEYS: H, L, F per bucket. ARGV: entry id, then cost per bucket.
RELEASE = (
    COMMON
    + r"""
local now = now_s()
for i = 1, #KEYS / 3 do
  local m = ARGV[1] .. ':' .. ARGV[i + 1]
  local h, L, F = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  if redis.call('ZREM', F, m) == 1 then
    redis.call('ZADD', L, f6(now), m)
    redis.call('HINCRBY', h, 'fsum', -tonumber(ARGV[i + 1]))
    redis.call('HINCRBY', h, 'lsum', tonumber(ARGV[i + 1]))
  end
end
return 1
"""
)

# KEYS: H, L, F. ARGV: limit, window, headroom, burst, recovery_windows, ttl_extra_s,
# penalty_factor, explicit hold (0 = none), default hold cap. Returns {hold_s, factor}.
PENALISE = (
    COMMON
    + r"""
local b = load(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]),
  tonumber(ARGV[5]))
local now = now_s()
prune(b, KEYS[2], KEYS[3], now)
local explicit = tonumber(ARGV[8])
local result
if now < b.hold then
  if explicit > 0 then b.hold = math.max(b.hold, now + explicit) end
  result = {'0', f6(factor(b, now))}
else
  local hold = explicit
  if hold <= 0 then hold = math.min(b.window, tonumber(ARGV[9])) end
  b.f0 = math.max(1.0 / (2 * b.cap), factor(b, now) * tonumber(ARGV[7]))
  b.hold = now + hold
  b.paced = b.hold
  result = {f6(hold), f6(b.f0)}
end
save(b, KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[6]))
return result
"""
)

# KEYS: H, L, F. ARGV: limit, window, headroom, burst, recovery_windows.
# Returns {used, in_flight, cap, factor, held_for_s}.
SNAPSHOT = (
    COMMON
    + r"""
local b = load(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]),
  tonumber(ARGV[5]))
local now = now_s()
local used = prune(b, KEYS[2], KEYS[3], now)
local c = cap(b, now)
local f = factor(b, now)
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'lsum', b.lsum, 'fsum', b.fsum, 'f0', f6(b.f0))
end
return {used, b.fsum, c, f6(f), f6(math.max(0, b.hold - now))}
"""
)
