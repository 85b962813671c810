"""The frontier's Redis scripts: every state change is one atomic script call.

A request (its JSON member, see ``codec``) is in exactly one of:
``pending`` (sorted set, score -priority), ``delayed`` (score: ready time, ms),
``leased`` (score: lease deadline, ms) — or done (gone) or dead (``dead`` hash).
Times come from Redis's own clock (``TIME``), so workers on several machines agree.

Feed hints (``crawler.pages.hints``) ride along with three helpers of the prelude, and only
there: ``keep_hint`` (called by ``push`` for every article push that carries one, queued or
filtered, and by FLUSH for the hints of requests a worker dropped as known), ``hint_of`` (POP
hands each leased article request its hint) and ``forget_hint`` (FLUSH's acknowledgements). A
hint is kept only while its article is *awaiting*: queued and not yet handled (a bit per id,
set by ``push`` when an article request is queued, cleared by ``forget_hint``), so hints never
outlive the queue. The hint of a request that continues (a retry, a redirect, a replay) travels
in its member instead (``codec.push_for``), so the acknowledgement of the attempt before it may
drop the Redis copy. Per-article state of other kinds belongs in helpers of its own beside them.
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
-- Feed hints. H: {awaiting bitmap, hints hash}. A hint is a JSON object by source
-- ({"a": {...}, "r": {...}}); a new one replaces the sources it names and keeps the others.
local function keep_hint(H, aid, blob)
  if aid <= 0 or blob == '' or redis.call('GETBIT', H[1], aid) == 0 then return 0 end
  local ok, new = pcall(cjson.decode, blob)
  if not ok or type(new) ~= 'table' then return 0 end
  local merged = {}
  local raw = redis.call('HGET', H[2], aid)
  if raw then
    local was_ok, old = pcall(cjson.decode, raw)
    if was_ok and type(old) == 'table' then merged = old end
  end
  for source, said in pairs(new) do merged[source] = said end
  redis.call('HSET', H[2], aid, cjson.encode(merged))
  return 1
end
local function article_of(member)
  local ok, req = pcall(cjson.decode, member)
  if ok and type(req) == 'table' and type(req['meta']) == 'table' then
    return tonumber(req['meta']['article_id']) or 0
  end
  return 0
end
local function hint_of(H, member)
  local aid = article_of(member)
  if aid <= 0 then return '' end
  return redis.call('HGET', H[2], aid) or ''
end
local function forget_hint(H, member)
  local aid = article_of(member)
  if aid > 0 then
    redis.call('SETBIT', H[1], aid, 0)
    redis.call('HDEL', H[2], aid)
  end
end
-- Queue n requests from ARGV starting at index i; returns next index, counts, and the
-- positions (1..n) of the links refused by link_cap.
-- K: {pending, delayed, seen articles, seen hubs, run article count, run-seen articles,
-- run link count, awaiting articles, hints}. Each request: member, priority, article id
-- (0: none), hub fingerprint ('' : none), mode ('0': deduplicated, '1': unfiltered, 'r': a
-- refresh, fetched at most once a run, 'p': deduplicated, a link found on a page that is not a
-- listing, of which at most link_cap (0: no cap) are queued a run), delay (ms, 0: ready now),
-- feed hint ('': none; kept whether or not the request is queued). A refused link is not
-- marked seen: a listing may still queue it.
local function push(i, n, now, cap, link_cap, K)
  local queued, filtered, capped, links, kept, cut = 0, 0, 0, 0, 0, {}
  for index = 1, n do
    local member, prio, aid = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    local fp, mode, delay, hint = ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5]), ARGV[i + 6]
    i = i + 7
    local ok = true
    local full = mode == 'p' and link_cap > 0
      and tonumber(redis.call('GET', K[7]) or '0') >= link_cap
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
      elseif full then
        ok = false
        table.insert(cut, index)
      else
        redis.call('SETBIT', K[3], aid, 1)
        redis.call('SETBIT', K[6], aid, 1)
        redis.call('INCR', K[5])
      end
    elseif mode ~= '1' and fp ~= '' then
      if redis.call('SISMEMBER', K[4], fp) == 1 then
        ok = false
        filtered = filtered + 1
      elseif full then
        ok = false
        table.insert(cut, index)
      else
        redis.call('SADD', K[4], fp)
      end
    end
    if ok and mode == 'p' then
      redis.call('INCR', K[7])
      links = links + 1
    end
    if ok then
      if delay > 0 then
        redis.call('ZADD', K[2], now + delay, member)
      else
        redis.call('ZADD', K[1], -prio, member)
      end
      queued = queued + 1
      if aid > 0 then redis.call('SETBIT', K[8], aid, 1) end
    end
    kept = kept + keep_hint({K[8], K[9]}, aid, hint)
  end
  return i, queued, filtered, capped, links, kept, cut
end
"""

# KEYS: pending delayed seen_articles seen_hubs run_articles run_seen run_links leased dead
# awaiting hints
# ARGV: cap, link_cap, n, n×7 push fields, h, h×2 (article id, hint), a, a acks, r, r releases,
# d, d×3 (key, json, article id).
# Pushes first, then the hints of dropped requests, then acks (so a request is acknowledged
# only with its children queued; an acknowledged article's hint goes with it), then releases
# (unstarted leases handed back), then dead letters. Returns {queued, filtered, capped, acked,
# links queued, hints kept, positions of the links refused by link_cap...}.
FLUSH = (
    _PRELUDE
    + """
local now = now_ms()
local cap, link_cap = tonumber(ARGV[1]), tonumber(ARGV[2])
local H = {KEYS[10], KEYS[11]}
local i, queued, filtered, capped, links, kept, cut = push(4, tonumber(ARGV[3]), now, cap,
  link_cap, {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[10], KEYS[11]})
local h = tonumber(ARGV[i]); i = i + 1
for _ = 1, h do
  kept = kept + keep_hint(H, tonumber(ARGV[i]), ARGV[i + 1]); i = i + 2
end
local acked = 0
local a = tonumber(ARGV[i]); i = i + 1
for _ = 1, a do
  if redis.call('ZREM', KEYS[8], ARGV[i]) == 1 then
    acked = acked + 1
    forget_hint(H, ARGV[i])
  end
  i = i + 1
end
local r = tonumber(ARGV[i]); i = i + 1
for _ = 1, r do
  if redis.call('ZREM', KEYS[8], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[1], -priority_of(ARGV[i]), ARGV[i])
  end
  i = i + 1
end
local d = tonumber(ARGV[i]); i = i + 1
for _ = 1, d do
  redis.call('HSET', KEYS[9], ARGV[i], ARGV[i + 1])
  local aid = tonumber(ARGV[i + 2])
  if aid > 0 then redis.call('SETBIT', KEYS[3], aid, 0) end
  i = i + 3
end
local out = {queued, filtered, capped, acked, links, kept}
for _, position in ipairs(cut) do table.insert(out, position) end
return out
"""
)

# KEYS: pending leased delayed fetching awaiting hints
# ARGV: k, lease_ms, max_fetching, worker id, worker's fetching, stale_ms
# Returns {now, reaped, member1, hint1, member2, hint2, ...}: each member is leased until
# now + lease_ms; its hint is its article's feed hint ('' for none).
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
  table.insert(out, hint_of({KEYS[5], KEYS[6]}, head[1]))
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

# KEYS: run pending delayed seen_articles seen_hubs run_articles run_seen run_links awaiting
# hints. ARGV: run json, cap, n, n×7 push fields. Begins a run and queues its seeds atomically,
# or returns the run already going. Returns {1, run json} or {0, existing run json}. Seeds are
# never links found on a page (no mode 'p'): no link cap, no run link count.
BEGIN = (
    _PRELUDE
    + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  push(4, tonumber(ARGV[3]), now_ms(), tonumber(ARGV[2]), 0,
    {KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]})
  return {1, ARGV[1]}
end
return {0, redis.call('GET', KEYS[1])}
"""
)

# KEYS: run pending leased delayed seen_hubs run_articles run_stats run_seen run_marks marks
# run_links awaiting hints
# ARGV: run id. Ends the run if it is that run and nothing is pending, leased or delayed:
# drops the run's dedupe state (and any feed hint left: nothing is queued to use it), merges
# the run's high-water marks into the kept ones (each only ever moves forward) and returns
# {1, stats...} to the one caller that ended it, else {0}.
FINISH = """
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
redis.call('DEL', KEYS[1], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[11], KEYS[12],
  KEYS[13])
table.insert(stats, 1, 1)
return stats
"""

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
