"""Change detection per article against a real Redis: sightings, version records, re-checks.

The verdicts are driven through the frontier's real write path (``RedisFrontier.flush``), so
the Lua helpers, the key layout and the counts are those a crawl uses.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from crawler.frontier import recheck
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.queue import Push, RedisFrontier
from crawler.frontier.recheck import RecheckConfig, RecheckState
from crawler.frontier.run import RunCoordinator
from crawler.frontier.versions import (
    NEVER,
    RecheckPlan,
    Sighting,
    VersionRecord,
    content_digest,
    feed_digest,
    hint_digest,
    sampled,
)
from tests.unit.frontier_helpers import run

T0 = 1_790_000_000  # a stored version's time (unix s)


def push(article_id: int, sighting: Sighting | None = None, n: int = 0) -> Push:
    member = json.dumps({"url": f"https://tass.com/world/{article_id}", "n": n}).encode()
    return Push(member, 100, article_id, sighting=sighting.mode() if sighting else "")


def stored(article_id: int, stamp: int, text: str = "body", sighting: Sighting | None = None):
    when = datetime.fromtimestamp(stamp, UTC)
    return VersionRecord.of(
        article_id,
        url=f"https://tass.com/world/{article_id}",
        title="Title",
        lead=None,
        body=text,
        modified_at=when,
        published_at=when,
        hint={"a": {"t": "Title", "d": T0}},
        sighting_meta=sighting.to_meta() if sighting else None,
    )


async def end_run(client, keys: FrontierKeys) -> None:
    """What FINISH does to the per-run state: the next pushes belong to a new run."""
    await client.delete(keys.run_seen_articles, keys.run_announced_articles, keys.pending)


def test_digests_ignore_spacing_and_case_but_not_words_or_dates() -> None:
    date = datetime.fromtimestamp(T0, UTC)
    assert feed_digest("Putin meets Xi", date) == feed_digest("  PUTIN meets  Xi. ", T0)
    assert feed_digest("Putin meets Xi", date) != feed_digest("Putin meets Modi", date)
    assert feed_digest("Putin meets Xi", date) != feed_digest("Putin meets Xi", T0 + 60)
    assert 0 < feed_digest("x", T0) < 2**16 and 0 < content_digest("t", None, "b") < 2**15
    assert feed_digest(None, None) == 0
    # The listing API's item first, else the RSS item's.
    api, rss = {"t": "Putin meets Xi", "d": T0}, {"t": "Other", "d": T0}
    assert hint_digest({"a": api, "r": rss}) == feed_digest("Putin meets Xi", T0)
    assert hint_digest({"r": rss}) == feed_digest("Other", T0)
    assert hint_digest(None) == 0 and hint_digest({"x": 1}) == 0


def test_the_sample_is_the_same_in_every_worker_and_near_its_rate() -> None:
    picks = [sampled("run-1", i, 0.05) for i in range(1, 20_001, 2)]
    assert picks == [sampled("run-1", i, 0.05) for i in range(1, 20_001, 2)]
    assert 400 < sum(picks) < 600
    assert picks != [sampled("run-2", i, 0.05) for i in range(1, 20_001, 2)]
    assert not any(sampled("run-1", i, 0.0) for i in range(100))


def test_sightings_fetch_the_new_and_the_changed_only(redis_url, key_prefix) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        q = RedisFrontier(client, keys)
        plain = RecheckPlan()
        # Unknown ids are new; an unknown one older than the run's window is not.
        r = await q.flush(
            [push(11, Sighting(lastmod=T0, sitemap=True)), push(13, Sighting(old=True))], []
        )
        assert (r.queued, r.counts) == (1, {"changes/new": 1, "changes/too_old": 1})
        await q.flush([], [], versions=[stored(11, T0)])
        await end_run(client, keys)
        digest = feed_digest("Title", T0)
        unchanged = [
            Sighting(lastmod=T0, sitemap=True, after=plain.after, bare_after=plain.bare_after),
            Sighting(digest=digest),  # the listing item as it was
            Sighting(lastmod=T0 - 3600, sitemap=True),  # an older lastmod says nothing new
        ]
        r = await q.flush([push(11, s, n) for n, s in enumerate(unchanged)], [])
        assert (r.queued, r.counts) == (0, {"changes/unchanged": 3})
        # A later lastmod, or a listing item whose title or date moved: changed, fetched once.
        changed = [Sighting(lastmod=T0 + 60, sitemap=True), Sighting(digest=digest ^ 1)]
        r = await q.flush([push(11, s, n) for n, s in enumerate(changed)], [])
        assert (r.queued, r.filtered, r.counts) == (1, 1, {"changes/changed": 1})

    run(scenario, redis_url)


def test_a_version_is_written_only_once_stored(redis_url, key_prefix) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        q = RedisFrontier(client, keys)
        listed = Sighting(digest=feed_digest("Title", T0))
        await q.flush([push(21, listed), push(21, Sighting(lastmod=T0, sitemap=True), 1)], [])
        # A new article met again before it is stored is not a re-check when stored.
        assert (await q.flush([], [], versions=[stored(21, T0, sighting=listed)])).counts == {}
        await end_run(client, keys)
        edit = Sighting(lastmod=T0 + 600, sitemap=True)
        assert (await q.flush([push(21, edit)], [])).counts == {"changes/changed": 1}
        # The fetch failed (no version written): the next run still sees the change.
        await end_run(client, keys)
        assert (await q.flush([push(21, edit, 1)], [])).counts == {"changes/changed": 1}
        # Stored at last (as the edit's fetch): the same lastmod is unchanged from now on.
        await q.flush([], [], versions=[stored(21, T0 + 600, "edited", edit)])
        await end_run(client, keys)
        assert (await q.flush([push(21, edit, 2)], [])).counts == {"changes/unchanged": 1}
        # A lastmod later than the page's own modified_at is kept as the stamp.
        late = Sighting(lastmod=T0 + 900, sitemap=True)
        await end_run(client, keys)
        assert (await q.flush([push(21, late)], [])).counts == {"changes/changed": 1}
        await q.flush([], [], versions=[stored(21, T0 + 600, "edited", late)])
        await end_run(client, keys)
        assert (await q.flush([push(21, late, 1)], [])).counts == {"changes/unchanged": 1}

    run(scenario, redis_url)


def test_ids_known_before_versions_existed_take_a_sighting_as_baseline(
    redis_url, key_prefix
) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        q = RedisFrontier(client, keys)
        await client.setbit(keys.seen_articles, 31, 1)  # queued by an older crawler
        first = [Sighting(lastmod=T0, sitemap=True), Sighting(digest=feed_digest("T", T0))]
        r = await q.flush([push(31, s, n) for n, s in enumerate(first)], [])
        assert (r.queued, r.counts) == (0, {"changes/unchanged": 2}), "no re-crawl on upgrade"
        r = await q.flush([push(31, Sighting(lastmod=T0 + 1, sitemap=True))], [])
        assert r.counts == {"changes/changed": 1}, "but the baseline announces the next edit"

    run(scenario, redis_url)


def test_re_checks_sample_window_and_bare_articles(redis_url, key_prefix) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        q = RedisFrontier(client, keys)
        runs = RunCoordinator(client, keys)
        for aid, stamp in ((41, T0), (43, T0 - 86400 * 10), (45, T0), (47, T0)):
            await q.flush([push(aid, Sighting(lastmod=stamp, sitemap=True))], [])
            await q.flush([], [], versions=[stored(aid, stamp)])
        # 45's sitemap entry loses its lastmod: it is bare from now on.
        await end_run(client, keys)
        await q.flush([push(45, Sighting(sitemap=True))], [])
        await end_run(client, keys)
        run_1, _ = await runs.begin({}, [])
        window = T0 - 3600  # unchanged articles stored since then are re-checked
        listed = feed_digest("Title", T0)
        sightings = {
            41: Sighting(lastmod=T0, sitemap=True, after=window),  # in the window
            43: Sighting(lastmod=T0 - 86400 * 10, sitemap=True, sample=True),  # sampled
            45: Sighting(digest=listed, bare_after=window),  # bare, recent
            47: Sighting(digest=listed, sample=True),  # sampled through its listing item
        }
        r = await q.flush([push(a, s) for a, s in sightings.items()], [])
        assert (r.queued, r.counts) == (4, {"changes/window": 2, "changes/sampled": 2})
        # Stored again: 43 and 47 had in fact changed, the others had not.
        versions = [
            stored(41, T0, sighting=sightings[41]),
            stored(43, T0 - 86400 * 10, "quietly edited", sightings[43]),
            stored(45, T0, sighting=sightings[45]),
            stored(47, T0 + 60, "edited", sightings[47]),
        ]
        r = await q.flush([], [], versions=versions)
        assert r.counts == {"recheck/window": 1, "recheck/sampled": 2, "recheck/bare": 1}
        # 47's sitemap entry, read after its fetch, announces its edit; 43's does not.
        later = [
            push(47, Sighting(lastmod=T0 + 60, sitemap=True), 1),
            push(43, Sighting(lastmod=T0 - 86400 * 10, sitemap=True), 1),
        ]
        assert (await q.flush(later, [])).queued == 0, "fetched once a run"
        await client.delete(keys.pending)  # as if fetched: the run is done
        stats = await runs.finish(run_1)
        assert stats == {"tass/recheck/sample_edits": 1}, "only 43's edit was unannounced"
        assert not await client.exists(keys.run_rechecked, keys.run_announced_articles)
        # Outside every window and not sampled: not fetched.
        quiet = Sighting(lastmod=T0, sitemap=True, after=NEVER, bare_after=NEVER)
        assert (await q.flush([push(41, quiet, 2)], [])).counts == {"changes/unchanged": 1}

    run(scenario, redis_url)


def test_a_stored_article_drops_its_dead_letter_and_moves_the_newest_stamp(
    redis_url, key_prefix
) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        q = RedisFrontier(client, keys)
        url = "https://tass.com/world/51"
        await client.hset(keys.dead, url, "{}")
        await q.flush([], [], versions=[stored(51, T0), stored(53, T0 - 5)])
        assert not await client.hexists(keys.dead, url)
        await q.flush([], [], versions=[stored(55, T0 - 10)])
        assert int(await client.hget(keys.recheck, "newest")) == T0

    run(scenario, redis_url)


def test_the_window_widens_on_unannounced_edits_and_closes_after_clean_runs() -> None:
    config = RecheckConfig(sample=20, hours=72)
    state = RecheckState()
    assert recheck.advance(config, state, checked=20, found=0) == RecheckState(0.0, 1)
    state = recheck.advance(config, state, checked=20, found=1)
    assert state == RecheckState(72.0, 0), "an unannounced edit opens the window"
    state = recheck.advance(config, state, checked=40, found=2)
    assert state.window_hours == 144.0
    for _ in range(10):
        state = recheck.advance(config, state, checked=40, found=3)
    assert state.window_hours == 72 * 8, "never wider than RECHECK_MAX_FACTOR times the base"
    widths = []
    for _ in range(20):
        state = recheck.advance(config, state, checked=40, found=0)
        widths.append(state.window_hours)
    assert widths[:3] == [576.0, 576.0, 288.0], "halved after three clean runs"
    assert widths[-1] == 0.0 and 18.0 in widths and 9.0 not in widths, "closed below base/4"
    assert recheck.advance(config, state, checked=0, found=0) == state, "no evidence, no move"


def test_a_plan_turns_the_state_into_cut_offs() -> None:
    config = RecheckConfig(sample=20, hours=72)
    now = 1_800_000_000.0
    closed = recheck.plan(config, RecheckState(), known=1000, now=now)
    assert closed == RecheckPlan(0.02, NEVER, int(now - 72 * 3600), 0.0)
    wide = recheck.plan(config, RecheckState(48.0, 0), known=10, now=now)
    assert wide.rate == 1.0 and wide.after == int(now - 48 * 3600)
    assert recheck.plan(RecheckConfig(0, 0), RecheckState(), 0, now) == RecheckPlan()
    # The windows count back from the newest version stored: the site's clock, not ours.
    behind = recheck.plan(config, RecheckState(48.0, 0, newest=int(now) - 86400), 10, now)
    assert behind.after == int(now) - 86400 - 48 * 3600
    assert RecheckPlan.from_args(wide.to_args()) == wide


@pytest.mark.parametrize(("sample", "hours"), [(-1, 72), (20, -1.0), (20, float("nan"))])
def test_a_malformed_recheck_setting_names_itself(sample: int, hours: float) -> None:
    name = "TASS_RECHECK_SAMPLE" if sample < 0 else "TASS_RECHECK_HOURS"
    with pytest.raises(ValueError, match=name):
        RecheckConfig(sample=sample, hours=hours)


def test_the_report_says_how_far_the_signals_were_trusted() -> None:
    counters = {
        "changes/new": 200, "changes/changed": 30, "recheck/sampled": 18,
        "recheck/sample_edits": 1, "recheck/window": 2, "recheck/next_window_s": 72 * 3600,
    }  # fmt: skip
    args = {"recheck": RecheckPlan(0.01, NEVER, NEVER, 0.0).to_args()}
    report = recheck.change_report(counters, args)
    assert report["trust"] == 0.95 and report["next_window_hours"] == 72.0
    assert 0.05 < report["unannounced_rate_upper95"] < 0.3
    assert recheck.change_report({}, {})["trust"] is None
    clean = recheck.change_report({"recheck/sampled": 100}, args)
    assert clean["trust"] == 1.0 and clean["unannounced_rate_upper95"] == 0.03


def test_a_sighting_survives_the_request_meta() -> None:
    s = Sighting(lastmod=T0, digest=7, sitemap=True, old=True, sample=True, after=5, bare_after=9)
    assert Sighting.from_meta(s.to_meta()) == s
    assert Sighting.from_meta("junk") is None and Sighting.from_meta({"l": "x"}) is None
    assert s.mode() == f"v,{T0},7,mos,5,9"
    since = datetime.fromtimestamp(T0, UTC) - timedelta(days=1)
    of = Sighting.of(RecheckPlan(), "run", 3, lastmod=since, sitemap=True)
    assert of.lastmod == T0 - 86400 and of.digest == 0 and not of.sample


def test_the_spider_makes_every_feed_entry_a_sighting_in_an_incremental_run() -> None:
    from scrapy.http import Request as ScrapyRequest
    from scrapy.http import TextResponse

    from crawler.frontier.codec import push_for
    from crawler.frontier.lifecycle import RunScope
    from crawler.frontier.versions import SIGHTING_META
    from crawler.params import ParamDefaults
    from tests.unit.frontier_helpers import spider

    s = spider()
    plan = RecheckPlan(rate=1.0, after=T0, bare_after=T0 - 60)
    s.enter_run(RunScope("run-1", ParamDefaults().params({"recheck": plan.to_args()})))
    # A sitemap cut and ordered as no layout before it: what counts is each entry.
    recent = datetime.now(UTC).replace(microsecond=0)
    body = (
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>https://tass.com/politics/2198933</loc><lastmod>{recent.isoformat()}</lastmod>"
        "</url><url><loc>https://tass.com/world/2198001</loc></url>"
        "<url><loc>https://tass.com/economy/1000001</loc><lastmod>2020-01-01T10:00:00+03:00"
        "</lastmod></url></urlset>"
    )
    url = "https://tass.com/sitemap/sitemap_2b1f_3.xml"
    response = TextResponse(url, body=body.encode(), request=ScrapyRequest(url))
    requests = list(s.parse_sitemap(response))
    sightings = [Sighting.from_meta(r.meta[SIGHTING_META]) for r in requests]
    assert [x.lastmod if x else None for x in sightings] == [int(recent.timestamp()), 0, 1577862000]
    assert all(x and x.sitemap and x.sample and x.after == T0 for x in sightings)
    assert [x.old for x in sightings if x] == [False, False, True], "2020 is older than since"
    mode = push_for(requests[0], s, lambda r: b"").args()[4]
    assert mode == f"v,{int(recent.timestamp())},0,ms,{T0},{T0 - 60}"
    # A backfill: entries are plain article links, deduplicated by id alone.
    s.enter_run(RunScope("run-2", ParamDefaults().params({"since": "2019-01-01"})))
    backfill = list(s.parse_sitemap(response))
    assert backfill and all(SIGHTING_META not in r.meta for r in backfill)
