"""The frontier's Redis scripts: every state change is one atomic script call.

A request (its JSON member, see ``codec``) is in exactly one of:
``pending`` (sorted set, score -priority), ``delayed`` (score: ready time, ms),
``leased`` (score: lease deadline, ms) — or done (gone) or dead (``dead`` hash).
Times come from Redis's own clock (``TIME``), so workers on several machines agree.
"""

from __future__ import annotations

# Shared helpers, prepended to every script.
_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function priority_of(member)
  local ok, req = pcall(cjson.decode, member)
  if ok and type(req) == 'table' and tonumber(req['priority']) then
    return tonumber(req['priority'])
  end
  return 0
end
-- Queue n requests from ARGV starting at index i; returns next index and counts.
-- K: {pending, delayed, seen articles, seen hubs, run article count, run-seen articles,
--     run failed articles}.
-- Each request: member, priority, article id (0: none), hub fingerprint ('' : none),
-- mode ('0': deduplicated, '1': unfiltered, 'r': a refresh, fetched at most once a run),
-- delay (ms, 0: ready now).
local function push(i, n, now, cap, K)
  local queued, filtered, capped = 0, 0, 0
  for _ = 1, n do
    local member, prio, aid = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    local fp, mode, delay = ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5])
    i = i + 6
    local ok = true
    if mode ~= '1' and aid > 0 then
      -- An article is checked against the all-time bitmap; a refresh (a recent or changed
      -- article, fetched again) only against this run's, so it is fetched once a run. An
      -- article that failed twice in this run is not fetched again in it (a dead letter
      -- clears its bit, so it may be found and fetched once more, and again next run).
      local seen = K[3]
      if mode == 'r' then seen = K[6] end
      if tonumber(redis.call('HGET', K[7], aid) or '0') >= 2 then
        ok = false
        filtered = filtered + 1
      elseif redis.call('GETBIT', seen, aid) == 1 then
        ok = false
        filtered = filtered + 1
      elseif cap > 0 and tonumber(redis.call('GET', K[5]) or '0') >= cap then
        ok = false
        capped = capped + 1
      else
        redis.call('SETBIT', K[3], aid, 1)
        redis.call('SETBIT', K[6], aid, 1)
        redis.call('INCR', K[5])
      end
    elseif mode ~= '1' and fp ~= '' then
      if redis.call('SADD', K[4], fp) == 0 then
        ok = false
        filtered = filtered + 1
      end
    end
    if ok then
      if delay > 0 then
        redis.call('ZADD', K[2], now + delay, member)
      else
        redis.call('ZADD', K[1], -prio, member)
      end
      queued = queued + 1
    end
  end
  return i, queued, filtered, capped
end
-- Whether the caller's epoch is Redis's (an empty one is not checked): a worker that began or
-- joined a run before Redis lost its state (FLUSHALL, a restart without persistence) must not
-- write the lost run's queue into the new state.
local function same_epoch(key, epoch)
  return epoch == '' or redis.call('GET', key) == epoch
end
"""

# KEYS: pending delayed seen_articles seen_hubs run_articles run_seen leased dead run_failed
#       epoch
# ARGV: epoch, cap, n, n×6 push fields, a, a acks, r, r releases, d, d×3 (key, json, article
# id), f, f URLs. Refused ({-1}) when ``epoch`` is not Redis's (``same_epoch``). Pushes first,
# then acks (so a request is acknowledged only with its children queued), then releases
# (unstarted leases handed back), then dead letters (each counted against its article in the
# run: ``push`` queues an article that failed twice in the run no more in it), then the dead
# letters of URLs that have since succeeded are forgotten (as their ``failures`` are).
FLUSH = (
    _PRELUDE
    + """
if not same_epoch(KEYS[10], ARGV[1]) then return {-1} end
local now = now_ms()
local cap = tonumber(ARGV[2])
local i, queued, filtered, capped = push(4, tonumber(ARGV[3]), now, cap,
  {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[9]})
local acked = 0
local a = tonumber(ARGV[i]); i = i + 1
for _ = 1, a do
  acked = acked + redis.call('ZREM', KEYS[7], ARGV[i]); i = i + 1
end
local r = tonumber(ARGV[i]); i = i + 1
for _ = 1, r do
  if redis.call('ZREM', KEYS[7], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[1], -priority_of(ARGV[i]), ARGV[i])
  end
  i = i + 1
end
local d = tonumber(ARGV[i]); i = i + 1
for _ = 1, d do
  redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1])
  local aid = tonumber(ARGV[i + 2])
  if aid > 0 then
    redis.call('SETBIT', KEYS[3], aid, 0)
    redis.call('HINCRBY', KEYS[9], aid, 1)
  end
  i = i + 3
end
local f = tonumber(ARGV[i]); i = i + 1
for _ = 1, f do
  redis.call('HDEL', KEYS[8], ARGV[i]); i = i + 1
end
return {queued, filtered, capped, acked}
"""
)

# KEYS: pending leased delayed
# ARGV: k, lease_ms
# Returns {now, reaped, member1, member2, ...}: each member is leased until now + lease_ms.
# First returns expired leases (of dead workers) and due retries to the queue. Leasing is not
# bounded by the site's budget: a lease is not a request at the site. Requests at the site at
# once are bounded at send time (ENTER_SITE), their rate too (SLOT).
POP = (
    _PRELUDE
    + """
local now = now_ms()
local reaped = 0
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  local due = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, 500)
  for _, m in ipairs(due) do
    redis.call('ZREM', key, m)
    redis.call('ZADD', KEYS[1], -priority_of(m), m)
    if key == KEYS[2] then reaped = reaped + 1 end
  end
end
local out = {now, reaped}
for _ = 1, tonumber(ARGV[1]) do
  local head = redis.call('ZRANGE', KEYS[1], 0, 0)
  if #head == 0 then break end
  redis.call('ZREM', KEYS[1], head[1])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), head[1])
  table.insert(out, head[1])
end
return out
"""
)

# KEYS: at_site waiting polled
# ARGV: token, max at the site, ttl_ms, stale_ms
# One request asks to go to the site (``CRAWL_CONCURRENCY`` for the whole cluster, counting
# only requests actually there). Requests of every worker wait in one line, in the order they
# first asked (``waiting``, scored by that time, strictly increasing), so a worker that asks
# more often never takes the places of one that asks less; a waiter that stopped asking for
# ``stale_ms`` (its worker died) is dropped. The first ``free`` waiters get in: the token goes
# to ``at_site`` until now + ttl_ms (a dead worker's places lapse; leaving is a plain ZREM,
# ``RedisFrontier.leave_site``). Returns {1} when in, else {0, place in line}.
ENTER_SITE = (
    _PRELUDE
    + """
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local waiters = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, w in ipairs(waiters) do
  local polled = tonumber(redis.call('HGET', KEYS[3], w) or '0')
  if w ~= ARGV[1] and now - polled > tonumber(ARGV[4]) then
    redis.call('ZREM', KEYS[2], w)
    redis.call('HDEL', KEYS[3], w)
  end
end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  -- Strictly after the last in line (two asks in one millisecond keep their order).
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  local ticket = now
  if #last > 0 then ticket = math.max(now, tonumber(last[2]) + 1) end
  redis.call('ZADD', KEYS[2], ticket, ARGV[1])
end
redis.call('HSET', KEYS[3], ARGV[1], now)
local free = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[1])
local place = redis.call('ZRANK', KEYS[2], ARGV[1])
if place < free then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  return {1}
end
return {0, place}
"""
)

# KEYS: leased. ARGV: lease_ms, members... Extends the leases this worker still holds.
RENEW = (
    _PRELUDE
    + """
local deadline = now_ms() + tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', deadline, ARGV[i])
end
return renewed
"""
)

# KEYS: run pending delayed seen_articles seen_hubs run_articles run_seen run_failed epoch
#       run_stats run_marks
# ARGV: run json, a new epoch, cap, n, n×6 push fields. Begins a run and queues its seeds
# atomically, or returns the run already going. A new run starts from a clean state: whatever
# a lost run left of the run's own keys (hub fingerprints, counts, counters, marks) is
# dropped. Redis gets an epoch if it has none (a fresh or an emptied Redis). Returns
# {1, run json, epoch} or {0, existing run json, epoch}.
BEGIN = (
    _PRELUDE
    + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('SET', KEYS[9], ARGV[2], 'NX')
  redis.call('DEL', KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[10], KEYS[11])
  push(5, tonumber(ARGV[4]), now_ms(), tonumber(ARGV[3]),
    {KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]})
  return {1, ARGV[1], redis.call('GET', KEYS[9])}
end
return {0, redis.call('GET', KEYS[1]), redis.call('GET', KEYS[9])}
"""
)

# KEYS: run pending leased delayed seen_hubs run_articles run_stats run_seen run_marks marks
#       run_outcomes runs_ended run_failed
# ARGV: run id. Ends the run if it is that run and nothing is pending, leased or delayed:
# drops the run's dedupe state, merges the run's high-water marks into the kept ones (each
# only ever moves forward), notes the run as ended with its outcome to come (OUTCOME fills it
# in) and returns {1, stats...} to the one caller that ended it, else {0}.
FINISH = (
    _PRELUDE
    + """
local raw = redis.call('GET', KEYS[1])
if not raw or cjson.decode(raw)['id'] ~= ARGV[1] then return {0} end
local busy = redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3])
if busy + redis.call('ZCARD', KEYS[4]) > 0 then
  return {0}
end
local marks = redis.call('HGETALL', KEYS[9])
for j = 1, #marks, 2 do
  local kept = tonumber(redis.call('HGET', KEYS[10], marks[j]) or '0')
  if tonumber(marks[j + 1]) > kept then redis.call('HSET', KEYS[10], marks[j], marks[j + 1]) end
end
local stats = redis.call('HGETALL', KEYS[7])
redis.call('DEL', KEYS[1], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[13])
redis.call('HSET', KEYS[11], ARGV[1], '{"outcome":null}')
redis.call('ZADD', KEYS[12], now_ms(), ARGV[1])
table.insert(stats, 1, 1)
return stats
"""
)

# KEYS: run pending leased delayed seen_hubs run_articles run_stats run_seen run_marks
#       run_outcomes runs_ended run_failed epoch abandoned
# ARGV: run id (empty: the open run, whichever it is), a new epoch. Abandons the open run
# whatever it still has to do (``scrapy run abandon``): its pending, leased and delayed
# requests are moved to ``abandoned`` (the caller clears their articles' seen bits, so later
# runs may find them again), its dedupe state, counters and marks are dropped (an abandoned
# run moves no mark), it is noted as ended with its outcome to come (OUTCOME fills it in), and
# Redis gets a new epoch, so the run's workers' queue writes are refused from now on. Returns
# {1, run json, moved, stats...}, or {0} when there is no such open run.
ABANDON = (
    _PRELUDE
    + """
local raw = redis.call('GET', KEYS[1])
if not raw then return {0} end
local id = cjson.decode(raw)['id']
if ARGV[1] ~= '' and id ~= ARGV[1] then return {0} end
local moved = 0
for _, key in ipairs({KEYS[2], KEYS[3], KEYS[4]}) do
  if redis.call('EXISTS', key) == 1 then
    moved = moved + redis.call('ZCARD', key)
    redis.call('ZUNIONSTORE', KEYS[14], 2, KEYS[14], key)
    redis.call('DEL', key)
  end
end
local stats = redis.call('HGETALL', KEYS[7])
redis.call('DEL', KEYS[1], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[12])
redis.call('SET', KEYS[13], ARGV[2])
redis.call('HSET', KEYS[10], id, '{"outcome":null}')
redis.call('ZADD', KEYS[11], now_ms(), id)
table.insert(stats, 1, moved)
table.insert(stats, 1, raw)
table.insert(stats, 1, 1)
return stats
"""
)

# KEYS: run_outcomes runs_ended. ARGV: run id, outcome json, how many runs to keep.
# Records how a run ended, and forgets the oldest outcomes beyond the number kept.
OUTCOME = (
    _PRELUDE
    + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], now_ms(), ARGV[1])
end
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if extra > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, extra - 1)) do
    redis.call('HDEL', KEYS[1], old)
    redis.call('ZREM', KEYS[2], old)
  end
end
return 1
"""
)

# KEYS: pause_until. ARGV: seconds (ms). Pauses the cluster; never shortens a longer pause.
PAUSE = (
    _PRELUDE
    + """
local target = now_ms() + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if target > current then
  redis.call('SET', KEYS[1], target, 'PX', tonumber(ARGV[1]) + 60000)
  return target
end
return current
"""
)

# KEYS: sent pause_until min_interval.
# ARGV: interval_ms, limit, window_ms, sender id, k, horizon_ms.
# Reserves up to k send times for one worker, for the whole cluster: none inside a
# Retry-After pause, each at least the interval (the larger of 1/CRAWL_RATE and robots.txt's
# Crawl-delay) after the one before it, whoever holds it, never more than ``limit`` in any
# ``window_ms``, none further ahead than ``horizon_ms``. Every reservation is recorded at once.
# Returns {now, retry_at, t1, t2, ...}: the reserved times, or none and when to ask again.
SLOT = (
    _PRELUDE
    + """
local now = now_ms()
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
if pause > now then return {now, pause} end
local interval = tonumber(ARGV[1])
local floor = tonumber(redis.call('GET', KEYS[3]) or '0')
if floor > interval then interval = floor end
local limit, window = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local t = now
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #last > 0 and tonumber(last[2]) + interval > t then t = tonumber(last[2]) + interval end
local out = {now, 0}
for i = 1, tonumber(ARGV[5]) do
  if t - now > tonumber(ARGV[6]) then break end
  local recent = redis.call('ZCOUNT', KEYS[1], '(' .. (t - window), '+inf')
  if recent >= limit then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (t - window), '+inf',
      'WITHSCORES', 'LIMIT', 0, 1)
    local free = tonumber(oldest[2]) + window
    if free - now > tonumber(ARGV[6]) then break end
    if free > t then t = free end
  end
  redis.call('ZADD', KEYS[1], t, ARGV[4] .. ':' .. t .. ':' .. i)
  table.insert(out, math.ceil(t))
  t = t + interval
end
if #out == 2 then out[2] = math.ceil(t) end
redis.call('PEXPIRE', KEYS[1], math.max(window, interval) * 2 + tonumber(ARGV[6]))
return out
"""
)

# KEYS: run_marks. ARGV: name1, value1, ... Raises each of the run's marks to the value given.
MARKS = """
for j = 1, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[j]) or '0')
  if tonumber(ARGV[j + 1]) > current then redis.call('HSET', KEYS[1], ARGV[j], ARGV[j + 1]) end
end
return 1
"""

# KEYS: schedule_state run run_requests. ARGV: due time (unix ms), due time (ISO), run args json.
# ``scrapy schedule``'s whole decision for one due time, so two schedulers never ask twice:
# 'idle' when that due time (or a later one) was handled; 'waiting' while a run is going or
# requested; else the run request is pushed and the due time recorded: 'started'.
REQUEST_RUN = """
local last = tonumber(redis.call('HGET', KEYS[1], 'last_handled_ms') or '-1')
if last >= tonumber(ARGV[1]) then return 'idle' end
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('LLEN', KEYS[3]) > 0 then
  return 'waiting'
end
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[1], 'last_handled', ARGV[2], 'last_handled_ms', ARGV[1],
  'last_request', ARGV[3])
return 'started'
"""
