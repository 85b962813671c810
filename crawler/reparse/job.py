"""A reparse job in Redis: its chunks, their leases and its counts, for any number of workers.

Scrapy-free, like the frontier's core. A job is named by what it does (``ReparseSpec``: the
filters and the extractor version), so the same command run again, on this machine or another
pointed at the same Redis, joins the job or resumes it instead of starting over; a change to
the extraction code is a new job.

- *Seeding*: one process lists the job's articles (by id, in order) and cuts them into chunks
  of article id ranges (``lo:hi``). It holds the seeding lock (a token that expires: a seeder
  that dies lets another start again from scratch); the others wait for the job to be ready.
- *Chunks*: a worker leases a chunk (its score becomes the lease deadline, on Redis's clock),
  renews the lease while it works, and marks it done with the chunk's counts, which are added
  to the job's only then, and only once (a chunk whose lease expired and was done by another
  worker counts once). A worker that dies leaves its lease to expire; the chunk is done again
  by whoever leases it next, which is harmless: a reparse writes only what changes.
- The job is done when no chunk is left. Its keys expire ``keep_seconds`` after the last
  change, so finished jobs do not pile up in the Redis that holds the frontier.

Every state change is one script (or one atomic command); key names are in
``crawler.frontier.keys``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from crawler.frontier.keys import ReparseKeys

Begin = Literal["seed", "wait", "ready", "done"]

_NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function keep(keys, ms)
  for _, key in ipairs(keys) do redis.call('PEXPIRE', key, ms) end
end
"""

# KEYS: state, seeding, todo, counts, failed. ARGV: token, lock ms, again ('1'), keep ms.
BEGIN = (
    _NOW
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'done' and ARGV[3] ~= '1' then return 'done' end
if status == 'ready' then return 'ready' end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'wait' end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5])
redis.call('HSET', KEYS[1], 'status', 'seeding')
keep({KEYS[1]}, ARGV[4])
return 'seed'
"""
)

# KEYS: seeding, todo. ARGV: token, lock ms, keep ms, chunk...
ADD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('seeding lock lost') end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for i = 4, #ARGV do redis.call('ZADD', KEYS[2], 'NX', 0, ARGV[i]) end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return #ARGV - 3
"""

# KEYS: state, seeding, todo, counts, failed. ARGV: token, total, spec, keep ms.
READY = (
    _NOW
    + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return redis.error_reply('seeding lock lost') end
local status = 'ready'
if redis.call('ZCARD', KEYS[3]) == 0 then status = 'done' end
redis.call('HSET', KEYS[1], 'status', status, 'total', ARGV[2], 'spec', ARGV[3],
  'started_ms', now_ms())
if status == 'done' then redis.call('HSET', KEYS[1], 'finished_ms', now_ms()) end
redis.call('DEL', KEYS[2])
keep({KEYS[1], KEYS[3], KEYS[4], KEYS[5]}, ARGV[4])
return status
"""
)

# KEYS: state, todo. ARGV: lease ms. Returns the chunk leased, or '' (none free) / nil (done).
LEASE = (
    _NOW
    + """
if redis.call('HGET', KEYS[1], 'status') ~= 'ready' then return nil end
local now = now_ms()
local free = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1)
if #free == 0 then return '' end
redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[1]), free[1])
return free[1]
"""
)

# KEYS: todo. ARGV: lease ms (0: release now), chunk.
RENEW = (
    _NOW
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
local deadline = 0
if tonumber(ARGV[1]) > 0 then deadline = now_ms() + tonumber(ARGV[1]) end
redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[2])
return 1
"""
)

# KEYS: state, todo, counts, failed. ARGV: chunk, keep ms, n counts, (name, n)..., (id, why)...
DONE = (
    _NOW
    + """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
local n = tonumber(ARGV[3])
local i = 4
for _ = 1, n do
  redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i < #ARGV do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  i = i + 2
end
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[1], 'status', 'done', 'finished_ms', now_ms())
end
keep({KEYS[1], KEYS[2], KEYS[3], KEYS[4]}, ARGV[2])
return 1
"""
)


@dataclass(frozen=True, slots=True)
class ReparseSpec:
    """What a reparse job does: which articles, and with which extraction code."""

    extractor: str
    since: datetime | None = None
    ids: tuple[int, ...] = ()
    section: str | None = None

    @property
    def job_id(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        data["ids"] = list(self.ids)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ReparseSpec:
        data = json.loads(text)
        since = datetime.fromisoformat(data["since"]) if data.get("since") else None
        return cls(
            extractor=str(data["extractor"]),
            since=since,
            ids=tuple(int(i) for i in data.get("ids") or ()),
            section=data.get("section"),
        )

    def article_filter(self) -> dict[str, Any]:
        """The MongoDB filter of the job's articles."""
        query: dict[str, Any] = {}
        if self.since is not None:
            query["published_at"] = {"$gte": self.since}
        if self.ids:
            query["_id"] = {"$in": list(self.ids)}
        if self.section is not None:
            query["section"] = self.section
        return query

    def describe(self) -> str:
        parts = [f"since {self.since.date().isoformat()}" if self.since else ""]
        parts.append(f"{len(self.ids)} ids" if self.ids else "")
        parts.append(f"section {self.section}" if self.section else "")
        return ", ".join(p for p in parts if p) or "every article"


def chunk_ranges(ids: Iterable[int], size: int) -> Iterator[str]:
    """``lo:hi`` ranges of ``size`` consecutive ids each, from ids in ascending order."""
    first: int | None = None
    last = 0
    count = 0
    for article_id in ids:
        if first is None:
            first = article_id
        last, count = article_id, count + 1
        if count == size:
            yield f"{first}:{last}"
            first, count = None, 0
    if first is not None:
        yield f"{first}:{last}"


def chunk_bounds(chunk: str) -> tuple[int, int]:
    """The inclusive id range of a chunk."""
    low, _, high = chunk.partition(":")
    return int(low), int(high)


@dataclass(slots=True)
class JobStatus:
    """A job as Redis holds it."""

    status: str | None
    total: int = 0
    left: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    spec: str | None = None
    started_ms: int | None = None
    finished_ms: int | None = None

    @property
    def pages(self) -> int:
        """Articles handled so far (re-extracted, failed or without an archived page)."""
        return self.counts.get("articles", 0)

    def started_at(self) -> datetime | None:
        return _from_ms(self.started_ms)

    def finished_at(self) -> datetime | None:
        return _from_ms(self.finished_ms)


def _from_ms(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ReparseJob:
    """One job's chunks and counts in Redis (module docstring)."""

    def __init__(
        self, client: Redis, keys: ReparseKeys, *, lease_seconds: float, keep_seconds: float
    ) -> None:
        self.client = client
        self.keys = keys
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self.keep_ms = max(1, int(keep_seconds * 1000))
        self._begin = client.register_script(BEGIN)
        self._add = client.register_script(ADD)
        self._ready = client.register_script(READY)
        self._lease = client.register_script(LEASE)
        self._renew = client.register_script(RENEW)
        self._done = client.register_script(DONE)

    async def begin(self, token: str, *, again: bool = False) -> Begin:
        """``seed``: this process lists the chunks (it holds the lock); ``wait``: another one
        does; ``ready``: the job is under way; ``done``: it is finished (``again``: start it
        over instead)."""
        k = self.keys
        answer = await self._begin(
            keys=[k.state, k.seeding, k.todo, k.counts, k.failed],
            args=[token, self.lease_ms, "1" if again else "0", self.keep_ms],
        )
        result: Begin = _text(answer)  # type: ignore[assignment]
        return result

    async def add_chunks(self, token: str, chunks: list[str]) -> None:
        if chunks:
            await self._add(
                keys=[self.keys.seeding, self.keys.todo],
                args=[token, self.lease_ms, self.keep_ms, *chunks],
            )

    async def ready(self, token: str, total: int, spec: ReparseSpec) -> str:
        k = self.keys
        answer = await self._ready(
            keys=[k.state, k.seeding, k.todo, k.counts, k.failed],
            args=[token, total, spec.to_json(), self.keep_ms],
        )
        return _text(answer)

    async def lease(self) -> str | None:
        """A chunk to work on; ``""`` when every chunk left is leased by someone; None when
        the job is not under way (done, or not ready yet)."""
        answer = await self._lease(keys=[self.keys.state, self.keys.todo], args=[self.lease_ms])
        return None if answer is None else _text(answer)

    async def renew(self, chunk: str) -> bool:
        return bool(await self._renew(keys=[self.keys.todo], args=[self.lease_ms, chunk]))

    async def release(self, chunk: str) -> None:
        """Give a leased chunk back at once (a worker that stops before finishing it)."""
        await self._renew(keys=[self.keys.todo], args=[0, chunk])

    async def done(self, chunk: str, counts: dict[str, int], failed: dict[int, str]) -> bool:
        """Mark ``chunk`` done and add its counts; False if another worker did it first."""
        k = self.keys
        args: list[Any] = [chunk, self.keep_ms, len(counts)]
        for name, count in counts.items():
            args += [name, count]
        for article_id, reason in failed.items():
            args += [article_id, reason]
        return bool(await self._done(keys=[k.state, k.todo, k.counts, k.failed], args=args))

    async def status(self) -> JobStatus:
        k = self.keys
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(k.state)
            pipe.zcard(k.todo)
            pipe.hgetall(k.counts)
            pipe.hgetall(k.failed)
            state, left, counts, failed = await pipe.execute()
        state = {_text(a): _text(b) for a, b in state.items()}
        return JobStatus(
            status=state.get("status"),
            total=int(state.get("total", 0)),
            left=int(left),
            counts={_text(a): int(b) for a, b in counts.items()},
            failed={int(a): _text(b) for a, b in failed.items()},
            spec=state.get("spec"),
            started_ms=int(state["started_ms"]) if "started_ms" in state else None,
            finished_ms=int(state["finished_ms"]) if "finished_ms" in state else None,
        )
