"""A reparse job's Redis side against a real Valkey: seeding, leases, completion, resumption."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from crawler.frontier.keys import FrontierKeys
from crawler.frontier.redis import open_redis
from crawler.reparse.job import ReparseJob, ReparseSpec, chunk_bounds, chunk_ranges


def _run(make):
    return asyncio.run(make())


def _job(redis_url: str, prefix: str, job_id: str = "j1", lease: float = 30.0) -> ReparseJob:
    return ReparseJob(
        open_redis(redis_url),
        FrontierKeys(prefix).reparse(job_id),
        lease_seconds=lease,
        keep_seconds=600,
    )


SPEC = ReparseSpec(extractor="0.1.0+abc", since=datetime(2026, 1, 1, tzinfo=UTC), section="world")


def test_chunks_are_id_ranges_of_the_given_size() -> None:
    assert list(chunk_ranges([1, 3, 5, 7, 9], 2)) == ["1:3", "5:7", "9:9"]
    assert list(chunk_ranges([], 2)) == []
    assert chunk_bounds("5:7") == (5, 7)


def test_spec_names_the_job_by_what_it_does() -> None:
    again = ReparseSpec.from_json(SPEC.to_json())
    assert again == SPEC and again.job_id == SPEC.job_id
    assert ReparseSpec(extractor="0.1.0+def", since=SPEC.since, section="world").job_id != (
        SPEC.job_id
    )
    assert SPEC.article_filter() == {"published_at": {"$gte": SPEC.since}, "section": "world"}
    assert ReparseSpec(extractor="x", ids=(3, 5)).article_filter() == {"_id": {"$in": [3, 5]}}


def test_one_seeder_and_the_others_wait(redis_url, key_prefix) -> None:
    async def body():
        a, b = _job(redis_url, key_prefix), _job(redis_url, key_prefix)
        assert await a.begin("token-a") == "seed"
        assert await b.begin("token-b") == "wait"
        await a.add_chunks("token-a", ["1:3", "5:7"])
        assert await b.lease() is None  # not ready yet
        assert await a.ready("token-a", 4, SPEC) == "ready"
        assert await b.begin("token-b") == "ready"
        status = await b.status()
        assert (status.status, status.total, status.left) == ("ready", 4, 2)
        assert ReparseSpec.from_json(status.spec) == SPEC
        for job in (a, b):
            await job.client.aclose()

    _run(body)


def test_each_chunk_is_leased_once_and_counted_once(redis_url, key_prefix) -> None:
    async def body():
        a, b = _job(redis_url, key_prefix), _job(redis_url, key_prefix)
        await a.begin("t")
        await a.add_chunks("t", ["1:3", "5:7"])
        await a.ready("t", 4, SPEC)
        first, second = await a.lease(), await b.lease()
        assert {first, second} == {"1:3", "5:7"}
        assert await a.lease() == ""  # everything left is leased
        assert await a.done(first, {"articles": 2, "changed/title": 1}, {3: "missing_field:body"})
        assert not await b.done(first, {"articles": 2}, {})  # already done: not counted twice
        assert (await a.status()).status == "ready"
        assert await b.done(second, {"articles": 2, "changed/title": 2}, {})
        status = await a.status()
        assert status.status == "done" and status.left == 0
        assert status.counts == {"articles": 4, "changed/title": 3}
        assert status.failed == {3: "missing_field:body"}
        assert status.finished_at() is not None
        assert await a.lease() is None  # done: nothing more to lease
        for job in (a, b):
            await job.client.aclose()

    _run(body)


def test_a_dead_workers_chunk_returns_when_its_lease_expires(redis_url, key_prefix) -> None:
    async def body():
        dead = _job(redis_url, key_prefix, lease=0.3)
        live = _job(redis_url, key_prefix, lease=0.3)
        await dead.begin("t")
        await dead.add_chunks("t", ["1:3"])
        await dead.ready("t", 2, SPEC)
        chunk = await dead.lease()
        assert chunk == "1:3" and await live.lease() == ""
        await asyncio.sleep(0.5)  # the dead worker never renews
        assert await live.lease() == "1:3"
        assert await live.renew("1:3")
        await live.release("1:3")  # a stopping worker gives it back at once
        assert await live.lease() == "1:3"
        for job in (dead, live):
            await job.client.aclose()

    _run(body)


def test_a_finished_job_is_not_run_twice_unless_asked(redis_url, key_prefix) -> None:
    async def body():
        job = _job(redis_url, key_prefix)
        await job.begin("t")
        await job.add_chunks("t", ["1:1"])
        await job.ready("t", 1, SPEC)
        await job.done(await job.lease(), {"articles": 1}, {})
        assert await job.begin("t2") == "done"
        assert await job.begin("t3", again=True) == "seed"
        status = await job.status()
        assert status.status == "seeding" and status.counts == {} and status.left == 0
        await job.client.aclose()

    _run(body)


def test_a_seeder_that_dies_is_replaced_and_starts_over(redis_url, key_prefix) -> None:
    async def body():
        dead = _job(redis_url, key_prefix, lease=0.3)
        other = _job(redis_url, key_prefix, lease=0.3)
        assert await dead.begin("dead") == "seed"
        await dead.add_chunks("dead", ["1:3"])
        assert await other.begin("other") == "wait"
        await asyncio.sleep(0.5)  # the dead seeder's lock expires
        assert await other.begin("other") == "seed"
        assert (await other.status()).left == 0  # its half-listed chunks are gone
        await other.add_chunks("other", ["1:5"])
        assert await other.ready("other", 3, SPEC) == "ready"
        for job in (dead, other):
            await job.client.aclose()

    _run(body)


def test_an_empty_job_is_done_at_once(redis_url, key_prefix) -> None:
    async def body():
        job = _job(redis_url, key_prefix)
        await job.begin("t")
        assert await job.ready("t", 0, SPEC) == "done"
        await job.client.aclose()

    _run(body)
