"""The frontier's Redis scripts: every state change is one atomic script call.

A request (its JSON member, see ``codec``) is in exactly one of:
``pending`` (sorted set, score -priority; a plain article request waits as bits instead, see
``crawler.frontier.plain`` and ``enqueue``, and is its member again once leased),
``delayed`` (score: ready time, ms),
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

Article versions (``crawler.frontier.versions``) have theirs: ``version_of`` reads an id's
64-bit record, ``sighting_verdict`` (called by ``push`` for an article push whose mode is a
sighting, ``v,...``) decides whether a feed entry makes the article worth fetching, and
``record_version`` (FLUSH, before the acknowledgements) writes the version just stored and says
whether a re-check found an unannounced edit. Their counts go to a table ``C`` by name.

The run's tally (``run_tally``: ``enqueued``, ``done``, ``failed``) is kept by the scripts that
move requests in and out of the queue: every entry ``push`` adds (BEGIN, FLUSH, FEED), every
lease FLUSH acknowledges or ends as a dead letter; so pending + delayed + leased + done +
failed = enqueued at every instant (``scrapy status``).
"""

from __future__ import annotations

from crawler.frontier.plain import MAX_ID

# Shared helpers, prepended to every script.
_PRELUDE = (
    """
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
local function hint_of(H, member, aid)
  aid = aid or article_of(member)
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
-- Article versions. V: {versions}. 64 bits an id: u32 stamp, u16 feed digest, u15 content
-- digest, u1 bare (its sitemap entry has no lastmod). Ids above MAX have no record.
local MAX_VERSIONED = 67108863
local function version_of(V, aid)
  local b = aid * 64
  local r = redis.call('BITFIELD', V[1], 'GET', 'u32', b, 'GET', 'u16', b + 32,
    'GET', 'u15', b + 48, 'GET', 'u1', b + 63)
  return r[1], r[2], r[3], r[4]
end
local function count(C, name) C[name] = (C[name] or 0) + 1 end
-- The verdict on a sighting (mode 'v,lastmod,digest,flags,after,bare_after') of article aid:
-- 'n' new, 'o' too old to be new, 'q' queued in this run already, 'c' changed, 's' sampled,
-- 'w' window re-check, 'u' unchanged. V: {versions, run-seen articles, run-announced
-- articles, run-rechecked}. A sitemap sighting ('m') sets the bare bit; a change is marked in
-- the run's announced bitmap (whichever sighting queued the article, and before or after a
-- re-check stored it); a record without a stamp or a feed digest takes the sighting's as its
-- baseline (not while the article is queued: its store writes the record).
local function sighting_verdict(V, aid, seen, mode)
  local l, d, flags, after, bare_after = string.match(mode, '^v,(%d+),(%d+),([%a-]+),(%d+),(%d+)$')
  if not l then return 'c' end
  l, d, after, bare_after = tonumber(l), tonumber(d), tonumber(after), tonumber(bare_after)
  if not seen then
    if string.find(flags, 'o', 1, true) then return 'o' end
    return 'n'
  end
  if aid > MAX_VERSIONED then return 'c' end
  local stamp, digest, _, bare = version_of(V, aid)
  local b = aid * 64
  if string.find(flags, 'm', 1, true) then
    local now_bare = (l == 0) and 1 or 0
    if now_bare ~= bare then
      redis.call('BITFIELD', V[1], 'SET', 'u1', b + 63, now_bare)
      bare = now_bare
    end
  end
  local queued = redis.call('GETBIT', V[2], aid) == 1
  local rechecked = redis.call('HGET', V[4], aid)
  if rechecked then
    -- Re-checked and found edited earlier in the run: does this sighting announce the edit,
    -- against the version the re-check replaced?
    local was_stamp, was_digest = string.match(rechecked, '^(%d+):(%d+):')
    was_stamp, was_digest = tonumber(was_stamp), tonumber(was_digest)
    if l > was_stamp or (d > 0 and was_digest > 0 and d ~= was_digest) then
      redis.call('SETBIT', V[3], aid, 1)
    end
  end
  if not queued then
    if stamp == 0 and l > 0 then redis.call('BITFIELD', V[1], 'SET', 'u32', b, l); stamp = l end
    if digest == 0 and d > 0 then
      redis.call('BITFIELD', V[1], 'SET', 'u16', b + 32, d)
      digest = d
    end
  end
  local changed = l > stamp or (d > 0 and digest > 0 and d ~= digest)
  if changed then redis.call('SETBIT', V[3], aid, 1) end
  if queued then return 'q' end
  if changed then return 'c' end
  if string.find(flags, 's', 1, true) then return 's' end
  if stamp >= after or (bare == 1 and stamp >= bare_after) then return 'w' end
  return 'u'
end
-- Write a stored version (aid, stamp, feed digest, content digest, the announced lastmod and
-- digest, kind: 's' a sampled sighting, 'r' another sighting, '-' none). V: {versions,
-- run-announced articles, run-rechecked}. A re-check is a sighting of an article no sighting
-- had called changed; counted by kind now. When its text had changed, the version it replaced
-- is kept in run-rechecked until the run ends: FINISH counts it as an unannounced edit unless a
-- sighting of the run announced it meanwhile (sitemaps are often read after the fetch).
local function record_version(V, C, aid, stamp, feed, content, l, d, kind)
  if aid <= 0 or aid > MAX_VERSIONED then return end
  local old_stamp, old_feed, old_content, bare = version_of(V, aid)
  local announced = old_stamp == 0 or l > old_stamp or (d > 0 and old_feed > 0 and d ~= old_feed)
    or redis.call('GETBIT', V[2], aid) == 1
  if kind ~= '-' and not announced then
    local what = 'window'
    if bare == 1 then what = 'bare' elseif kind == 's' then what = 'sampled' end
    count(C, 'recheck/' .. what)
    if old_content > 0 and old_content ~= content then
      if what == 'sampled' then what = 'sample' end
      redis.call('HSETNX', V[3], aid, old_stamp .. ':' .. old_feed .. ':' .. what)
    end
  end
  if old_stamp > stamp then stamp = old_stamp end
  if feed == 0 then feed = old_feed end
  local b = aid * 64
  redis.call('BITFIELD', V[1], 'SET', 'u32', b, stamp, 'SET', 'u16', b + 32, feed,
    'SET', 'u15', b + 48, content)
end
local VERDICT = {n = 'new', o = 'too_old', c = 'changed', s = 'sampled', w = 'window',
  u = 'unchanged'}
local function flat_counts(out, C)
  for name, value in pairs(C) do
    table.insert(out, name)
    table.insert(out, value)
  end
  return out
end
-- Plain article requests (``crawler.frontier.plain``): a bit per id and priority, the section
-- a u4 code per id. P: {pending:plain (hash: form, total, n:<priority> entries, at:<priority>
-- the lowest byte that may hold one), pending:plain:sections}; a priority's bits are at
-- P[1] .. ':ids:' .. priority (``FrontierKeys.pending_plain_ids``). A section code is written
-- once and kept while any bit is set (so a bit's code is always its own); all goes when the
-- last bit does. F: the parsed form, or nil (nothing is stored as bits).
local PLAIN_MAX_ID = """
    + str(MAX_ID)
    + """
local function plain_form(raw)
  if not raw or raw == '' then return nil end
  local secs, tpl = string.match(raw, '^([^\\n]*)\\n(.*)$')
  if not tpl then return nil end
  local F = {raw = raw, code = {}, name = {}}
  local n = 0
  for s in string.gmatch(secs, '[^,]+') do n = n + 1; F.code[s] = n; F.name[n] = s end
  local t = {string.match(tpl,
    '^([^\\1\\2\\3]*)\\1([^\\1\\2\\3]*)\\3([^\\1\\2\\3]*)\\2([^\\1\\2\\3]*)\\1([^\\1\\2\\3]*)$')}
  if #t ~= 5 or n > 15 then return nil end
  local function esc(s) return (string.gsub(s, '[%^%$%(%)%%%.%[%]%*%+%-%?]', '%%%0')) end
  F.t = t
  F.pattern = '^' .. esc(t[1]) .. '(%d+)' .. esc(t[2]) .. '(%-?%d+)' .. esc(t[3])
    .. '([%w%-]+)' .. esc(t[4]) .. '%1' .. esc(t[5]) .. '$'
  return F
end
local function plain_member(F, prio, code, aid)
  return F.t[1] .. aid .. F.t[2] .. prio .. F.t[3] .. F.name[code] .. F.t[4] .. aid .. F.t[5]
end
-- Queue member (of priority prio, for a member that is not plain) in pending, or as a bit when
-- it is plain under F and its id's section code is free or its own. Returns 1 if added, 0 if
-- it was queued already. The bits' counts and cursors are noted in A ({n = {}, at = {}}) and
-- written by ``plain_commit`` once per script call.
local function enqueue(P, F, member, prio, A)
  local aid, p, s
  if F and string.sub(member, 1, #F.t[1]) == F.t[1] then
    aid, p, s = string.match(member, F.pattern)
  end
  local code = s and F.code[s]
  if code then
    aid, p = tonumber(aid), tonumber(p)
    if aid < 1 or aid > PLAIN_MAX_ID or plain_member(F, p, code, aid) ~= member then code = nil end
  end
  if code then
    local have = redis.call('BITFIELD', P[2], 'GET', 'u4', '#' .. aid, 'SET', 'u4', '#' .. aid,
      code)[1]
    if have ~= 0 and have ~= code then
      redis.call('BITFIELD', P[2], 'SET', 'u4', '#' .. aid, have)
      code = nil
    end
  end
  if not code then return redis.call('ZADD', P[3], -prio, member) end
  if redis.call('SETBIT', P[1] .. ':ids:' .. p, aid, 1) == 1 then return 0 end
  A.n[p] = (A.n[p] or 0) + 1
  local byte = math.floor(aid / 8)
  if not A.at[p] or byte < A.at[p] then A.at[p] = byte end
  return 1
end
-- Write what ``enqueue`` noted: the counts, the cursors moved down, the form with the first bit.
local function plain_commit(P, F, A)
  local added = 0
  for p, n in pairs(A.n) do
    added = added + n
    redis.call('HINCRBY', P[1], 'n:' .. p, n)
    local at = redis.call('HGET', P[1], 'at:' .. p)
    if not at or A.at[p] < tonumber(at) then redis.call('HSET', P[1], 'at:' .. p, A.at[p]) end
  end
  if added > 0 and redis.call('HINCRBY', P[1], 'total', added) == added then
    redis.call('HSET', P[1], 'form', F.raw)
  end
end
-- The form a FLUSH queues under: its own (wire, '' for none) unless Redis holds bits of
-- another (the form is written with the first bit, ``enqueue``, and goes with the last).
local function plain_state(P, wire)
  if wire == '' then return nil end
  local stored = redis.call('HGET', P[1], 'form')
  if stored and stored ~= wire then return nil end
  return plain_form(wire)
end
-- What POP takes from the bits, read once a call and written back once (``plain_save``):
-- Q.n[priority] entries, Q.at[priority] the byte to search from, Q.taken.
local function plain_counts(P)
  local Q = {n = {}, at = {}, taken = 0}
  local flat = redis.call('HGETALL', P[1])
  for j = 1, #flat, 2 do
    local kind, p = string.match(flat[j], '^(%a+):(%-?%d+)$')
    if kind == 'n' then Q.n[tonumber(p)] = tonumber(flat[j + 1]) end
    if kind == 'at' then Q.at[tonumber(p)] = tonumber(flat[j + 1]) end
  end
  return Q
end
-- The best (highest) priority with bits set.
local function plain_best(Q)
  local best = nil
  for p, n in pairs(Q.n) do
    if n > 0 and (best == nil or p > best) then best = p end
  end
  return best
end
-- Take the lowest id of priority prio out of its bits: its member (nil if none: the bits and
-- the count disagree, and the count is set right).
local function plain_take(P, F, Q, prio)
  local aid = redis.call('BITPOS', P[1] .. ':ids:' .. prio, 1, Q.at[prio] or 0)
  if aid < 0 or not F then
    Q.n[prio], Q.dirty = 0, true
    return nil
  end
  redis.call('SETBIT', P[1] .. ':ids:' .. prio, aid, 0)
  Q.at[prio] = math.floor(aid / 8)
  Q.n[prio] = Q.n[prio] - 1
  Q.taken = Q.taken + 1
  local code = redis.call('BITFIELD', P[2], 'GET', 'u4', '#' .. aid)[1]
  if F.name[code] then return plain_member(F, prio, code, aid), aid end
  return nil
end
local function plain_save(P, Q)
  if Q.taken == 0 and not Q.dirty then return end
  if plain_best(Q) == nil then
    for p, _ in pairs(Q.n) do redis.call('DEL', P[1] .. ':ids:' .. p) end
    redis.call('DEL', P[1], P[2])
    return
  end
  for p, n in pairs(Q.n) do
    if n > 0 then
      redis.call('HSET', P[1], 'n:' .. p, n, 'at:' .. p, Q.at[p] or 0)
    else
      redis.call('DEL', P[1] .. ':ids:' .. p)
      redis.call('HDEL', P[1], 'n:' .. p, 'at:' .. p)
    end
  end
  redis.call('HINCRBY', P[1], 'total', -Q.taken)
end
-- Queue n requests from ARGV starting at index i; returns next index, counts, the positions
-- (1..n) of the links refused by link_cap, and how many were added (new entries of pending or
-- delayed: the same request pushed twice waits once, and the run's tally counts it once).
-- K: {pending, delayed, seen articles, seen hubs, run article count, run-seen articles,
-- run link count, awaiting articles, hints, run failed articles, versions, run-announced
-- articles, run-rechecked, pending:plain, pending:plain:sections}; C: counts by name (the
-- sightings' verdicts); F: the plain form to queue under (nil: none). Each request: member,
-- priority, article id (0: none), hub fingerprint ('' : none), mode ('0': deduplicated, '1':
-- unfiltered, 'v,...': a feed's sighting of an article, fetched when sighting_verdict says so
-- and at most once a run, 'r': a refresh (an article fed on start_urls), fetched even if
-- stored, at most once a run, 'p': deduplicated, a link found on a page that is not a listing,
-- of which at most link_cap (0: no cap) are queued a run),
-- delay (ms, 0: ready now), feed hint ('': none; kept whether or not the request is
-- queued). A refused link is not marked seen: a listing may still queue it.
local function push(i, n, now, cap, link_cap, K, C, F)
  local queued, filtered, capped, links, kept, cut, added = 0, 0, 0, 0, 0, {}, 0
  local A = {n = {}, at = {}}
  for index = 1, n do
    local member, prio, aid = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    local fp, mode, delay, hint = ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5]), ARGV[i + 6]
    i = i + 7
    local ok = true
    local full = mode == 'p' and link_cap > 0
      and tonumber(redis.call('GET', K[7]) or '0') >= link_cap
    if mode ~= '1' and aid > 0 then
      -- An article is checked against the all-time bitmap; a sighting of a known article
      -- that its verdict fetches again, and a refresh, only against this run's, so it is
      -- fetched once a run.
      -- An article that failed twice in this run is not fetched again in it (a dead letter
      -- clears its bit, so it may be found and fetched once more, and again next run).
      local seen = K[3]
      local verdict = nil
      if mode == 'r' then seen = K[6] end
      if string.sub(mode, 1, 2) == 'v,' then
        local known = redis.call('GETBIT', K[3], aid) == 1
        verdict = sighting_verdict({K[11], K[6], K[12], K[13]}, aid, known, mode)
        if verdict ~= 'n' then seen = K[6] end
      end
      if tonumber(redis.call('HGET', K[10], aid) or '0') >= 2 then
        ok = false
        filtered = filtered + 1
      elseif verdict == 'u' or verdict == 'o' then
        ok = false
        filtered = filtered + 1
        count(C, 'changes/' .. VERDICT[verdict])
      elseif verdict == 'q' or redis.call('GETBIT', seen, aid) == 1 then
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
        if verdict then count(C, 'changes/' .. VERDICT[verdict]) end
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
        added = added + redis.call('ZADD', K[2], now + delay, member)
      else
        added = added + enqueue({K[14], K[15], K[1]}, F, member, prio, A)
      end
      queued = queued + 1
      if aid > 0 then redis.call('SETBIT', K[8], aid, 1) end
    end
    kept = kept + keep_hint({K[8], K[9]}, aid, hint)
  end
  plain_commit({K[14], K[15]}, F, A)
  return i, queued, filtered, capped, links, kept, cut, added
end
-- Whether the caller's epoch is Redis's (an empty one is not checked): a worker that began or
-- joined a run before Redis lost its state (FLUSHALL, a restart without persistence) must not
-- write the lost run's queue into the new state.
local function same_epoch(key, epoch)
  return epoch == '' or redis.call('GET', key) == epoch
end
"""
)

# KEYS: pending delayed seen_articles seen_hubs run_articles run_seen run_links leased dead
# awaiting hints run_failed epoch versions run_announced recheck run_rechecked run_tally
#       pending_plain pending_plain_sections
# ARGV: epoch, cap, link_cap, plain form (``PlainForm.wire``, '' for none), n, n×7 push
# fields, h, h×2 (article id, hint), v, v×8 version
# records (``VersionRecord.args``), a, a acks, r, r releases, d, d×4 (key, json, article id,
# lease: the leased request that ended as this dead letter, '' for none).
# Refused ({-1}) when ``epoch`` is not Redis's (``same_epoch``). Pushes first, then the hints
# of dropped requests, then the versions just stored, then acks (so a request is acknowledged
# only with its children queued and its version written; an acknowledged article's hint goes
# with it), then releases (unstarted leases handed back), then dead letters (each counted
# against its article in the run: ``push`` queues an article that failed twice in the run no
# more in it; each ends its lease, and its hint with it). The run's tally counts every entry
# queued, every lease acknowledged and every lease that ended as a dead letter. Returns
# {queued, filtered, capped, leases ended (acknowledged or as dead letters), links queued,
# hints kept, c, c×2 (name, count: the sightings' verdicts and the re-checks' findings),
# positions of the links refused by link_cap...}.
FLUSH = (
    _PRELUDE
    + """
if not same_epoch(KEYS[13], ARGV[1]) then return {-1} end
local now = now_ms()
local cap, link_cap = tonumber(ARGV[2]), tonumber(ARGV[3])
local H = {KEYS[10], KEYS[11]}
local C = {}
local P = {KEYS[19], KEYS[20], KEYS[1]}
local F = plain_state(P, ARGV[4])
local i, queued, filtered, capped, links, kept, cut, added = push(6, tonumber(ARGV[5]), now,
  cap, link_cap, {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[10],
    KEYS[11], KEYS[12], KEYS[14], KEYS[15], KEYS[17], KEYS[19], KEYS[20]}, C, F)
if added > 0 then redis.call('HINCRBY', KEYS[18], 'enqueued', added) end
local h = tonumber(ARGV[i]); i = i + 1
for _ = 1, h do
  kept = kept + keep_hint(H, tonumber(ARGV[i]), ARGV[i + 1]); i = i + 2
end
local v = tonumber(ARGV[i]); i = i + 1
local newest = 0
for _ = 1, v do
  local stamp = tonumber(ARGV[i + 1])
  record_version({KEYS[14], KEYS[15], KEYS[17]}, C, tonumber(ARGV[i]), stamp,
    tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]),
    ARGV[i + 6])
  if stamp > newest then newest = stamp end
  -- A stored article recovered: a dead letter of its URL (an earlier attempt's) goes.
  redis.call('HDEL', KEYS[9], ARGV[i + 7])
  i = i + 8
end
-- The newest version stored: the site's clock, which the re-check windows count back from.
if newest > tonumber(redis.call('HGET', KEYS[16], 'newest') or '0') then
  redis.call('HSET', KEYS[16], 'newest', newest)
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
if acked > 0 then redis.call('HINCRBY', KEYS[18], 'done', acked) end
local r = tonumber(ARGV[i]); i = i + 1
local A = {n = {}, at = {}}
for _ = 1, r do
  if redis.call('ZREM', KEYS[8], ARGV[i]) == 1 then
    enqueue(P, F, ARGV[i], priority_of(ARGV[i]), A)
  end
  i = i + 1
end
plain_commit(P, F, A)
local d = tonumber(ARGV[i]); i = i + 1
for _ = 1, d do
  redis.call('HSET', KEYS[9], ARGV[i], ARGV[i + 1])
  local aid = tonumber(ARGV[i + 2])
  if aid > 0 then
    redis.call('SETBIT', KEYS[3], aid, 0)
    redis.call('HINCRBY', KEYS[12], aid, 1)
  end
  if ARGV[i + 3] ~= '' and redis.call('ZREM', KEYS[8], ARGV[i + 3]) == 1 then
    redis.call('HINCRBY', KEYS[18], 'failed', 1)
    acked = acked + 1
    forget_hint(H, ARGV[i + 3])
  end
  i = i + 4
end
local out = {queued, filtered, capped, acked, links, kept}
local counted = flat_counts({}, C)
table.insert(out, #counted / 2)
for _, x in ipairs(counted) do table.insert(out, x) end
for _, position in ipairs(cut) do table.insert(out, position) end
return out
"""
)

# KEYS: pending leased delayed awaiting hints pending_plain pending_plain_sections
# ARGV: k, lease_ms
# Returns {now, reaped, due, member1, hint1, member2, hint2, ...}: each member is leased until
# now + lease_ms; its hint is its article's feed hint ('' for none). With nothing leased, due
# is when the first delayed retry or lease comes due (0: none waits), for the worker to ask
# again then.
# First returns expired leases (of dead workers) and due retries to the queue (a plain one as
# its bit, ``enqueue``). Then leases the highest priority first, from pending or from the
# plain bits (lowest id first; pending first at equal priority), a plain request as the member
# it was queued as. Leasing is not bounded by the site's budget: a lease is not a request at
# the site. Requests at the site at once and their rate are bounded at send time (SITE).
POP = (
    _PRELUDE
    + """
local now = now_ms()
local reaped = 0
local P = {KEYS[6], KEYS[7], KEYS[1]}
local F = plain_form(redis.call('HGET', P[1], 'form'))
local A = {n = {}, at = {}}
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  local due = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, 500)
  for _, m in ipairs(due) do
    redis.call('ZREM', key, m)
    enqueue(P, F, m, priority_of(m), A)
    if key == KEYS[2] then reaped = reaped + 1 end
  end
end
plain_commit(P, F, A)
local Q = F and plain_counts(P) or {n = {}, at = {}, taken = 0}
local best = plain_best(Q)
local out = {now, reaped}
local k = tonumber(ARGV[1])
local head = nil
while k > 0 do
  head = head or redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local member, aid = nil, nil
  if best ~= nil and (#head == 0 or best > -tonumber(head[2])) then
    member, aid = plain_take(P, F, Q, best)
    if Q.n[best] <= 0 then best = plain_best(Q) end
  elseif #head > 0 then
    member, head = head[1], nil
    redis.call('ZREM', KEYS[1], member)
  else
    break
  end
  if member then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), member)
    table.insert(out, member)
    table.insert(out, hint_of({KEYS[4], KEYS[5]}, member, aid))
    k = k - 1
  end
end
plain_save(P, Q)
local due = 0
if #out == 2 then
  for _, key in ipairs({KEYS[2], KEYS[3]}) do
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if #first > 0 and (due == 0 or tonumber(first[2]) < due) then due = tonumber(first[2]) end
  end
end
table.insert(out, 3, due)
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
#       hints run_failed epoch run_stats versions run_announced run_rechecked run_tally
# ARGV: run json, a new epoch, cap, n, n×7 push fields. Begins a run and queues its seeds
# atomically (counted in the run's tally), or returns the run already going. A new run starts
# from a clean state: whatever a lost run left of the run's own keys (hub fingerprints,
# counts, counters, announced and re-checked articles, tally) is dropped. Redis gets an epoch
# if it has none (a fresh or an emptied Redis). Seeds are never links found on a page (no
# mode 'p'): no link cap. Returns {1, run json, epoch} or {0, existing run json, epoch}.
BEGIN = (
    _PRELUDE
    + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('SET', KEYS[12], ARGV[2], 'NX')
  redis.call('DEL', KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[11], KEYS[13], KEYS[15], KEYS[16],
    KEYS[17])
  local _, _, _, _, _, _, _, added = push(5, tonumber(ARGV[4]), now_ms(), tonumber(ARGV[3]), 0,
    {KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11],
      KEYS[14], KEYS[15], KEYS[16]}, {})
  if added > 0 then redis.call('HINCRBY', KEYS[17], 'enqueued', added) end
  return {1, ARGV[1], redis.call('GET', KEYS[12])}
end
return {0, redis.call('GET', KEYS[1]), redis.call('GET', KEYS[12])}
"""
)

# KEYS: run pending leased delayed seen_hubs run_articles run_stats run_seen run_links awaiting
#       hints run_outcomes runs_ended run_failed run_announced run_rechecked run_tally
#       start_urls feed_claimed pending_plain
# ARGV: run id. Ends the run if it is that run and nothing is pending (in pending or as plain
# bits), leased or delayed, and
# no URL fed on start_urls waits (or is claimed): counts the re-checks' unannounced edits
# (those no sighting of the run announced), drops the run's dedupe state and tally (and any
# feed hint left: nothing is queued to use it), notes the run as ended with its outcome to
# come (OUTCOME fills it in) and returns {1, stats...} to the one caller that ended it, else
# {0}.
FINISH = (
    _PRELUDE
    + """
local raw = redis.call('GET', KEYS[1])
if not raw or cjson.decode(raw)['id'] ~= ARGV[1] then return {0} end
local busy = redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3])
busy = busy + redis.call('LLEN', KEYS[18]) + redis.call('ZCARD', KEYS[19])
busy = busy + tonumber(redis.call('HGET', KEYS[20], 'total') or '0')
if busy + redis.call('ZCARD', KEYS[4]) > 0 then
  return {0}
end
local rechecked = redis.call('HGETALL', KEYS[16])
for j = 1, #rechecked, 2 do
  if redis.call('GETBIT', KEYS[15], tonumber(rechecked[j])) == 0 then
    local what = string.match(rechecked[j + 1], ':(%a+)$')
    redis.call('HINCRBY', KEYS[7], 'tass/recheck/' .. what .. '_edits', 1)
  end
end
local stats = redis.call('HGETALL', KEYS[7])
redis.call('DEL', KEYS[1], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11],
  KEYS[14], KEYS[15], KEYS[16], KEYS[17])
redis.call('HSET', KEYS[12], ARGV[1], '{"outcome":null}')
redis.call('ZADD', KEYS[13], now_ms(), ARGV[1])
table.insert(stats, 1, 1)
return stats
"""
)

# KEYS: run pending leased delayed seen_hubs run_articles run_stats run_seen run_announced
#       run_outcomes runs_ended run_failed epoch abandoned run_links awaiting hints
#       run_rechecked run_tally pending_plain pending_plain_sections abandoned_articles
# ARGV: run id (empty: the open run, whichever it is), a new epoch. Abandons the open run
# whatever it still has to do (``scrapy run abandon``): its pending, leased and delayed
# requests are moved to ``abandoned``, its plain bits to ``abandoned_articles`` (the caller
# clears their articles' seen bits, so later
# runs may find them again), its dedupe state, counters and tally are dropped (its unannounced
# edits are not counted), it is noted as ended with its outcome to come (OUTCOME fills it in), and
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
for p, n in pairs(plain_counts({KEYS[20]}).n) do
  moved = moved + n
  redis.call('BITOP', 'OR', KEYS[22], KEYS[22], KEYS[20] .. ':ids:' .. p)
  redis.call('DEL', KEYS[20] .. ':ids:' .. p)
end
redis.call('DEL', KEYS[20], KEYS[21])
local stats = redis.call('HGETALL', KEYS[7])
redis.call('DEL', KEYS[1], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[12], KEYS[15],
  KEYS[16], KEYS[17], KEYS[18], KEYS[19])
redis.call('SET', KEYS[13], ARGV[2])
redis.call('HSET', KEYS[10], id, '{"outcome":null}')
redis.call('ZADD', KEYS[11], now_ms(), id)
table.insert(stats, 1, moved)
table.insert(stats, 1, raw)
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

# KEYS: pending delayed seen_articles seen_hubs run_articles run_seen run_links awaiting
#       hints run_failed versions run_announced run_rechecked run_tally feed_claimed
#       feed_rejected epoch
# ARGV: epoch, n, n×7 push fields, c, c claims, r, r rejection records (JSON), rejections
# kept. Refused ({-1}) when ``epoch`` is not Redis's (``same_epoch``): the claims stay, and
# return to start_urls at their deadline. Queues the requests made from claimed start_urls
# entries (never capped by max_articles nor by the run's link cap: a user asked for them;
# counted in the run's tally), drops the claims and records the payloads refused, with their
# reason. Returns {queued, filtered}.
FEED = (
    _PRELUDE
    + """
if not same_epoch(KEYS[17], ARGV[1]) then return {-1} end
local i, queued, filtered, _, _, _, _, added = push(3, tonumber(ARGV[2]), now_ms(), 0, 0,
  {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10],
    KEYS[11], KEYS[12], KEYS[13]}, {})
if added > 0 then redis.call('HINCRBY', KEYS[14], 'enqueued', added) end
local c = tonumber(ARGV[i]); i = i + 1
for _ = 1, c do
  redis.call('ZREM', KEYS[15], ARGV[i]); i = i + 1
end
local r = tonumber(ARGV[i]); i = i + 1
for _ = 1, r do
  redis.call('LPUSH', KEYS[16], ARGV[i]); i = i + 1
end
if r > 0 then redis.call('LTRIM', KEYS[16], 0, tonumber(ARGV[i]) - 1) end
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

# KEYS: at_site waiting polled sent pause_until min_interval
# ARGV: max at the site, ttl_ms, stale_ms, interval_ms, limit, window_ms, sender id, horizon_ms,
# send times per place let in, send times wanted besides, send times at most, then n and the
# n tokens that left the site, then a and the a tokens that ask to go to it.
# Requests of one worker go to the site (``siteslots``): every change to the places at the site
# and to the send times of the cluster is this one call, so a worker gives back places, asks
# for places and reserves the send times of the requests it lets in, in one round trip.
# Places: ``CRAWL_CONCURRENCY`` for the whole cluster, counting only requests actually there.
# The tokens that left go first. Requests of every worker wait in one line, in the order they
# first asked (``waiting``, scored by that time, strictly increasing), so a worker that asks
# more often never takes the places of one that asks less; a waiter that stopped asking for
# ``stale_ms`` (its worker died) is dropped. The first ``free`` of the line get in: an asking
# token among them goes to ``at_site`` until now + ttl_ms (a dead worker's places lapse).
# Send times: none inside a Retry-After pause, each at least the interval (the larger of
# 1/CRAWL_RATE and robots.txt's Crawl-delay) after the one before it, whoever holds it, never
# more than ``limit`` in any ``window_ms``, none further ahead than ``horizon_ms``; every
# reservation is recorded at once.
# Returns {now, retry_at, line, r1..ra, t1, t2, ...}: the line's length after the call, for
# each asking token -1 (let in) or its place in the line, then the send times reserved (none:
# retry_at says when to ask again).
SITE = (
    _PRELUDE
    + """
local now = now_ms()
local n = tonumber(ARGV[12])
for i = 13, 12 + n do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('HDEL', KEYS[3], ARGV[i])
end
local first, a = 14 + n, tonumber(ARGV[13 + n])
local asking = {}
for i = first, first + a - 1 do asking[ARGV[i]] = true end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for _, w in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local polled = tonumber(redis.call('HGET', KEYS[3], w) or '0')
  if not asking[w] and now - polled > tonumber(ARGV[3]) then
    redis.call('ZREM', KEYS[2], w)
    redis.call('HDEL', KEYS[3], w)
  end
end
for i = first, first + a - 1 do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    -- Strictly after the last in line (two asks in one millisecond keep their order).
    local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
    local ticket = now
    if #last > 0 then ticket = math.max(now, tonumber(last[2]) + 1) end
    redis.call('ZADD', KEYS[2], ticket, ARGV[i])
  end
  redis.call('HSET', KEYS[3], ARGV[i], now)
end
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local out, places, admitted = {now, 0, 0}, {}, 0
for i = first, first + a - 1 do
  local place = redis.call('ZRANK', KEYS[2], ARGV[i])
  if place < free then place = -1 end
  table.insert(places, place)
end
for j, place in ipairs(places) do
  local token = ARGV[first + j - 1]
  if place < 0 then
    redis.call('ZREM', KEYS[2], token)
    redis.call('HDEL', KEYS[3], token)
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), token)
    admitted = admitted + 1
  else
    place = place - admitted  -- its place once those ahead of it got in
  end
  table.insert(out, place)
end
out[3] = redis.call('ZCARD', KEYS[2])
local k = math.min(tonumber(ARGV[11]), admitted * tonumber(ARGV[9]) + tonumber(ARGV[10]))
if k <= 0 then return out end
local pause = tonumber(redis.call('GET', KEYS[5]) or '0')
if pause > now then out[2] = pause; return out end
local interval = tonumber(ARGV[4])
local floor = tonumber(redis.call('GET', KEYS[6]) or '0')
if floor > interval then interval = floor end
local limit, window, horizon = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - window)
local t = now
local last = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
if #last > 0 and tonumber(last[2]) + interval > t then t = tonumber(last[2]) + interval end
local reserved = 0
for i = 1, k do
  if t - now > horizon then break end
  local recent = redis.call('ZCOUNT', KEYS[4], '(' .. (t - window), '+inf')
  if recent >= limit then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. (t - window), '+inf',
      'WITHSCORES', 'LIMIT', 0, 1)
    local free_at = tonumber(oldest[2]) + window
    if free_at - now > horizon then break end
    if free_at > t then t = free_at end
  end
  redis.call('ZADD', KEYS[4], t, ARGV[7] .. ':' .. t .. ':' .. i)
  table.insert(out, math.ceil(t))
  reserved = reserved + 1
  t = t + interval
end
if reserved == 0 then out[2] = math.ceil(t) end
redis.call('PEXPIRE', KEYS[4], math.max(window, interval) * 2 + horizon)
return out
"""
)

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
