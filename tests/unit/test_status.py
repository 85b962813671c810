"""The cluster's status (``crawler.status``) against a real Valkey: counts of one instant that
add up through every state change of the frontier, read without writing anything."""

from __future__ import annotations

import json
import time

from crawler.frontier.keys import FrontierKeys
from crawler.frontier.progress import RateMeter, WorkerBeat
from crawler.frontier.queue import Budget, DeadLetter, Push, RedisFrontier
from crawler.frontier.run import RunCoordinator
from crawler.status import format_status, progress_line, read_status
from tests.unit.frontier_helpers import enter_site, leave_site, run

FAST = Budget(interval_ms=0.1, per_second=10_000, concurrency=1000, lease_ms=60_000)


def member(url: str) -> bytes:
    return json.dumps({"url": url}, sort_keys=True).encode()


def article(article_id: int) -> Push:
    return Push(member(f"https://tass.com/world/{article_id}"), 100, article_id)


def adds_up(status) -> bool:
    q = status["queue"]
    return q["pending"] + q["delayed"] + q["leased"] + q["done"] + q["failed"] == q["enqueued"]


def test_the_queue_counts_add_up_through_every_state_change(
    redis_url, key_prefix, redis_client
) -> None:
    keys = FrontierKeys(key_prefix)
    seen: list[dict] = []

    async def scenario(client):
        queue = RedisFrontier(client, keys)
        coordinator = RunCoordinator(client, keys)

        async def look():
            status = await read_status(client, keys)
            seen.append(status)
            assert adds_up(status), status["queue"]
            return status["queue"]

        seeds = [Push(member(f"https://tass.com/{s}"), 40, fingerprint=s) for s in "abc"]
        await coordinator.begin({"since": "all"}, [*seeds, seeds[0]])  # one seed twice
        assert (await look())["enqueued"] == 3
        leases = (await queue.pop(3, FAST)).leases
        assert (await look())["leased"] == 3
        # Children queued with the first one's acknowledgement; a child pushed twice.
        await queue.flush([article(1), article(2), article(1)], [leases[0]])
        q = await look()
        assert (q["pending"], q["done"], q["enqueued"]) == (2, 1, 5)
        # A retry waits in delayed; the second lease fails for good; the third goes back.
        await queue.flush([Push(member("https://tass.com/b?retry"), 40, delay_ms=60_000)],
                          [leases[1]])  # fmt: skip
        letter = DeadLetter("https://tass.com/c", leases[2], "http_404", 1, lease=leases[2])
        await queue.flush([], [], dead=[letter])
        q = await look()
        assert (q["delayed"], q["done"], q["failed"], q["dead_letters"]) == (1, 2, 1, 1)
        await queue.flush([], [], releases=leases[2:])  # already ended: nothing comes back
        again = (await queue.pop(5, FAST)).leases
        await queue.flush([], [], releases=again)
        q = await look()
        assert (q["pending"], q["leased"]) == (2, 0)
        # Dead letters replayed are queued again, and counted as queued again.
        assert await queue.replay() == 1
        q = await look()
        assert (q["pending"], q["enqueued"], q["dead_letters"]) == (3, 7, 0)

    run(scenario, redis_url)
    assert seen[-1]["run"]["kind"] == "backfill" and seen[-1]["run"]["since"] == "all"


def test_the_requests_at_the_site_are_those_enter_site_let_in(redis_url, key_prefix) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        queue = RedisFrontier(client, keys)
        budget = Budget(interval_ms=0.1, per_second=10_000, concurrency=1, lease_ms=60_000)
        assert await enter_site(queue, budget, "a") == -1
        assert await enter_site(queue, budget, "b") == 0, "b waits in line"
        there = (await read_status(client, keys))["budget"]["at_site"]
        await leave_site(queue, budget, "a")
        return there, (await read_status(client, keys))["budget"]["at_site"]

    assert run(scenario, redis_url) == (1, 0)


def test_reading_the_status_writes_nothing(redis_url, key_prefix, redis_client) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        coordinator = RunCoordinator(client, keys, worker_id="gone:1")
        await coordinator.begin({}, [article(3)])
        await coordinator.tick(0, {"tass/run/articles": 2})
        await client.hset(keys.workers, "gone:1", json.dumps({"ts": time.time() - 3600}))
        before = await dump(client, key_prefix)
        status = await read_status(client, keys, stale_after=60)
        assert await dump(client, key_prefix) == before
        return status

    status = run(scenario, redis_url)
    [worker] = status["workers"]
    assert worker["id"] == "gone:1" and not worker["alive"], "a stale heartbeat is shown, kept"
    assert status["counts"]["run/articles"] == 2


async def dump(client, prefix: str) -> dict:
    keys = sorted([k async for k in client.scan_iter(match=f"{prefix}:*")])
    return {k: await client.dump(k) for k in keys}


def test_workers_measure_their_own_rates() -> None:
    meter = RateMeter(window=10)
    assert meter.sample(0, {"responses": 0}) == {"responses": 0.0}
    assert meter.sample(5, {"responses": 50}) == {"responses": 10.0}
    # Beyond the window, the rate is that of the last window only.
    meter.sample(20, {"responses": 50})
    assert meter.sample(25, {"responses": 150})["responses"] < 10.0
    totals = {"tass/frontier/responses": 7, "tass/run/articles": 3}
    clock = iter([100.0, 100.0, 102.0])
    beat = WorkerBeat(
        mode="crawl", totals=totals, inflight=lambda: 2, ready=lambda: 1, run_id=lambda: "r1",
        budget={"rate": 2.0, "concurrency": 8}, clock=lambda: next(clock),
    )  # fmt: skip
    first = beat.describe()
    assert first["totals"] == {"responses": 7, "articles": 3, "failures": 0}
    assert (first["inflight"], first["ready"], first["run"], first["mode"]) == (2, 1, "r1", "crawl")
    totals["tass/frontier/responses"] = 11
    assert beat.describe()["rates"]["responses_per_s"] == 2.0


def test_the_table_and_the_progress_line_say_what_the_status_holds(redis_url, key_prefix) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        coordinator = RunCoordinator(client, keys, worker_id="host-a:42")
        totals = {"tass/frontier/responses": 30, "tass/run/articles": 20}
        clock = iter([1000.0, 1000.0, 1010.0])
        coordinator.describe = WorkerBeat(
            mode="worker", totals=totals, inflight=lambda: 4, ready=lambda: 2,
            run_id=lambda: None, budget={"rate": 2.0, "concurrency": 8},
            clock=lambda: next(clock),
        ).describe  # fmt: skip
        await coordinator.begin({"max_articles": "50"}, [article(1), article(2)])
        await coordinator.tick(0, {"tass/run/articles": 20, "tass/frontier/responses": 30})
        totals["tass/frontier/responses"] = 50
        await coordinator.tick(0, {})
        await client.lpush(keys.feed_rejected, json.dumps({"payload": "junk", "reason": "x"}))
        return await read_status(client, keys)

    status = run(scenario, redis_url)
    assert status["budget"]["rate_now"] == 2.0 and status["budget"]["rate"] == 2.0
    assert status["budget"]["articles_queued"] == 2 and status["budget"]["articles_left"] == 48
    assert status["eta_s"] == 1.0, "2 queued at 2 responses a second"
    table = format_status(status)
    assert "2 ready, 0 delayed, 0 leased, 0 done, 0 failed (of 2 enqueued" in table
    assert "host-a:42" in table and "articles 2 of 50 (48 left)" in table
    assert "x: 'junk'" in table
    line = progress_line(status, "host-a:42")
    assert "cluster fetched 30, stored 20, failed 0 (2.0/s of 2.0/s budget)" in line
    assert "this worker: 50 fetched, 20 stored (2.0/s, 100% of the cluster)" in line


def command(env: dict[str, str], *args: str):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    base = {"PATH": "/usr/bin:/bin", "TASS_BASE_URL": "https://tass.com"}
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "status", *args],
        cwd=repo, env={**base, **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_command_shows_redis_without_mongodb_and_fails_without_redis(
    redis_url, key_prefix
) -> None:
    from crawler.embedded import free_port

    nowhere = f"mongodb://127.0.0.1:{free_port()}"
    env = {"REDIS_URL": redis_url, "MONGO_URI": nowhere, "TASS_REDIS_PREFIX": key_prefix}
    shown = command(env, "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["run"] is None and status["queue"]["enqueued"] == 0
    assert "ServerSelectionTimeoutError" in status["store"]["error"]
    unreachable = {**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    failed = command(unreachable)
    assert failed.returncode == 69 and "Redis unreachable" in failed.stderr, failed.stderr
    bad = command(env, "--watch", "0")
    assert bad.returncode == 2 and "--watch 0" in bad.stderr


def test_watch_prints_a_document_per_refresh_until_interrupted(redis_url, key_prefix) -> None:
    import signal
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {
        "PATH": "/usr/bin:/bin", "REDIS_URL": redis_url, "TASS_REDIS_PREFIX": key_prefix,
        "MONGO_URI": "", "TASS_BASE_URL": "https://tass.com",
    }  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "scrapy", "status", "--json", "--watch", "0.2"],
        cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(2)]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    docs = [json.loads(line) for line in lines]
    assert [d["prefix"] for d in docs] == [key_prefix, key_prefix]
    assert docs[0]["store"] == {"error": docs[0]["store"]["error"]}
    assert "MONGO_URI is empty" in docs[0]["store"]["error"]


def test_the_command_finds_a_local_crawls_embedded_servers(tmp_path) -> None:
    from crawler.embedded import LocalServices

    env = {"REDIS_URL": "", "MONGO_URI": "", "TASS_DATA_DIR": str(tmp_path / ".tass")}
    none = command(env)
    assert none.returncode == 2 and "no local crawl runs its embedded servers" in none.stderr
    services = LocalServices(tmp_path / ".tass")
    redis_server, _, _ = services.acquire()
    try:
        found = command(env, "--json")
        assert found.returncode == 0, found.stderr
        status = json.loads(found.stdout)
        assert status["prefix"] == "tass" and status["store"]["articles"] == 0
    finally:
        assert services.release()
    assert not redis_server.alive()
