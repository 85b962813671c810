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
-- K: {pending, delayed, seen articles, seen hubs, run article count, run-seen articles}.
-- Each request: member, priority, article id (0: none), hub fingerprint ('' : none),
-- mode ('0': deduplicated, '1': unfiltered, 'r': a refresh, fetched at most once a run),
-- delay (ms, 0: ready now). Returns the next index, and how many were queued, filtered,
-- capped and added (new entries of pending or delayed).
local function push(i, n, now, cap, K)
  local queued, filtered, capped, added = 0, 0, 0, 0
  for _ = 1, n do
    local member, prio, aid = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    local fp, mode, delay = ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5])
    i = i + 6
    local ok = true
    if mode ~= '1' and aid > 0 then
      -- An article is checked against the all-time bitmap; a refresh (a recent or changed
      -- article, fetched again) only against this run's, so it is fetched once a run.
      local seen = K[3]
      if mode == 'r' then seen = K[6] end
      if redis.call('GETBIT', seen, aid) == 1 then
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
      -- ``added`` (for the run's tally) leaves out an entry already waiting: the same
      -- request pushed twice waits once.
      if delay > 0 then
        added = added + redis.call('ZADD', K[2], now + delay, member)
      else
        added = added + redis.call('ZADD', K[1], -prio, member)
      end
      queued = queued + 1
    end
  end
  return i, queued, filtered, capped, added
end
"""

# KEYS: pending delayed seen_articles seen_hubs run_articles run_seen leased dead run_tally
# ARGV: cap, n, n×6 push fields, a, a acks, r, r releases, d, d×4 (key, json, article id,
# lease: the leased request that ended as this dead letter, '' for none)
# Pushes first, then acks (so a request is acknowledged only with its children queued),
# then releases (unstarted leases handed back), then dead letters (each ends its lease).
# Returns {queued, filtered, capped, leases ended (acknowledged or as dead letters)}.
# The run's tally counts every entry queued, every lease acknowledged and every lease that
# ended as a dead letter.
FLUSH = (
    _PRELUDE
    + """
local now = now_ms()
local cap = tonumber(ARGV[1])
local i, queued, filtered, capped, added = push(3, tonumber(ARGV[2]), now, cap,
  {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]})
if added > 0 then redis.call('HINCRBY', KEYS[9], 'enqueued', added) end
local acked = 0
local a = tonumber(ARGV[i]); i = i + 1
for _ = 1, a do
  acked = acked + redis.call('ZREM', KEYS[7], ARGV[i]); i = i + 1
end
if acked > 0 then redis.call('HINCRBY', KEYS[9], 'done', acked) end
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
  if aid > 0 then redis.call('SETBIT', KEYS[3], aid, 0) end
  if ARGV[i + 3] ~= '' and redis.call('ZREM', KEYS[7], ARGV[i + 3]) == 1 then
    redis.call('HINCRBY', KEYS[9], 'failed', 1)
    acked = acked + 1
  end
  i = i + 4
end
return {queued, filtered, capped, acked}
"""
)

# KEYS: pending leased delayed fetching
# ARGV: k, lease_ms, max_fetching, worker id, worker's fetching, stale_ms
# Returns {now, reaped, member1, member2, ...}: each member is leased until now + lease_ms.
# First returns expired leases (of dead workers) and due retries to the queue. The
# ``fetching`` hash holds each worker's requests at (or about to be at) the site; their sum,
# over fresh entries only, stays under max_fetching. The request *rate* is paced at send time
# (SLOT), not here.
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
local fetching = tonumber(ARGV[5])
local entries = redis.call('HGETALL', KEYS[4])
for j = 1, #entries, 2 do
  if entries[j] ~= ARGV[4] then
    local count, seen = string.match(entries[j + 1], '^(%d+):(%d+)$')
    if count and now - tonumber(seen) <= tonumber(ARGV[6]) then
      fetching = fetching + tonumber(count)
    else
      redis.call('HDEL', KEYS[4], entries[j])
    end
  end
end
local k = math.min(tonumber(ARGV[1]), tonumber(ARGV[3]) - fetching)
local granted = 0
for _ = 1, k do
  local head = redis.call('ZRANGE', KEYS[1], 0, 0)
  if #head == 0 then break end
  redis.call('ZREM', KEYS[1], head[1])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), head[1])
  table.insert(out, head[1])
  granted = granted + 1
end
-- What this worker was just granted counts as fetching until it reports again.
redis.call('HSET', KEYS[4], ARGV[4], (tonumber(ARGV[5]) + granted) .. ':' .. now)
return out
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

# KEYS: run pending delayed seen_articles seen_hubs run_articles run_seen run_tally
# ARGV: run json, cap, n, n×6 push fields. Begins a run and queues its seeds atomically,
# or returns the run already going. Returns {1, run json} or {0, existing run json}.
BEGIN = (
    _PRELUDE
    + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  local _, _, _, _, added = push(4, tonumber(ARGV[3]), now_ms(), tonumber(ARGV[2]),
    {KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]})
  if added > 0 then redis.call('HINCRBY', KEYS[8], 'enqueued', added) end
  return {1, ARGV[1]}
end
return {0, redis.call('GET', KEYS[1])}
"""
)

# KEYS: run pending leased delayed seen_hubs run_articles run_stats run_seen run_marks marks
#       run_outcomes runs_ended run_tally start_urls feed_claimed
# ARGV: run id. Ends the run if it is that run and nothing is pending, leased or delayed, and
# no URL fed on start_urls waits (or is claimed): drops the run's dedupe state, merges the
# run's high-water marks into the kept ones (each only ever moves forward), notes the run as
# ended with its outcome to come (OUTCOME fills it in) and returns {1, stats...} to the one
# caller that ended it, else {0}.
FINISH = (
    _PRELUDE
    + """
local raw = redis.call('GET', KEYS[1])
if not raw or cjson.decode(raw)['id'] ~= ARGV[1] then return {0} end
local busy = redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3])
busy = busy + redis.call('LLEN', KEYS[14]) + redis.call('ZCARD', KEYS[15])
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

# KEYS: start_urls feed_claimed feed_seq run. ARGV: n, claim_ms, may_begin ('1': take entries
# even with no run going, for the caller to begin one).
# Takes up to n entries fed on start_urls (LPOP, as scrapy-redis does) as *claims*: each is
# kept in feed_claimed until the FEED call that queues it, and returns to the front of the list
# when its deadline passes first (the worker died). Entries are taken only while a run is
# going (or may_begin), and FINISH does not end a run while claims are held, so a claimed URL
# belongs to the run it was claimed in. Returns {run exists (1/0), returned, member1, ...}
# (each member is ``<seq>:<payload>``).
CLAIM_FEED = (
    _PRELUDE
    + """
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 500)
for _, m in ipairs(expired) do
  redis.call('ZREM', KEYS[2], m)
  redis.call('LPUSH', KEYS[1], string.match(m, '^%d+:(.*)$'))
end
local running = redis.call('EXISTS', KEYS[4])
local out = {running, #expired}
if running == 0 and ARGV[3] ~= '1' then return out end
for _ = 1, tonumber(ARGV[1]) do
  local raw = redis.call('LPOP', KEYS[1])
  if not raw then break end
  local member = redis.call('INCR', KEYS[3]) .. ':' .. raw
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), member)
  table.insert(out, member)
end
return out
"""
)

# KEYS: pending delayed seen_articles seen_hubs run_articles run_seen run_tally feed_claimed
#       feed_rejected
# ARGV: n, n×6 push fields, c, c claims, r, r rejection records (JSON), rejections kept.
# Queues the requests made from claimed start_urls entries (never capped by max_articles: a
# user asked for them), drops the claims and records the payloads refused, with their reason.
# Returns {queued, filtered}.
FEED = (
    _PRELUDE
    + """
local i, queued, filtered, _, added = push(2, tonumber(ARGV[1]), now_ms(), 0,
  {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]})
if added > 0 then redis.call('HINCRBY', KEYS[7], 'enqueued', added) end
local c = tonumber(ARGV[i]); i = i + 1
for _ = 1, c do
  redis.call('ZREM', KEYS[8], ARGV[i]); i = i + 1
end
local r = tonumber(ARGV[i]); i = i + 1
for _ = 1, r do
  redis.call('LPUSH', KEYS[9], ARGV[i]); i = i + 1
end
if r > 0 then redis.call('LTRIM', KEYS[9], 0, tonumber(ARGV[i]) - 1) end
return {queued, filtered}
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
