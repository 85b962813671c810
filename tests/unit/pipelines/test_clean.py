"""The clean stage normalises text, dates and lists, and leaves failures alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from crawler.items import PageFailure
from pipelines.clean import CleanPipeline, clean_body, clean_title, to_utc

from .helpers import article, make_crawler


def _clean(item):
    crawler = make_crawler()
    return CleanPipeline.from_crawler(crawler).process_item(item), crawler.stats


def test_body_paragraphs_collapsed_and_furniture_dropped() -> None:
    raw = (
        "  MOSCOW,  October 26. /TASS/.\tThe  cafe\u0301 opened. \n\n\n"
        "{{newsPoint.title}}\n\n"
        "Реклама\n\n"
        "Read also\n\n"
        "© Sergei Fadeichev/TASS\n\n"
        "Second   paragraph\nwith a line break {{item.group_date}} inside.\n \n"
        "<script>window.ga = 1</script>\n\n"
        "   \n\n"
        "Third."
    )
    body, dropped = clean_body(raw)
    assert body == (
        "MOSCOW, October 26. /TASS/. The café opened.\n\n"
        "Second paragraph with a line break inside.\n\n"
        "Third."
    )
    assert dropped == 5


def test_control_characters_leave_the_body_and_cannot_hide_a_blank_line() -> None:
    body, dropped = clean_body("MOS\x00COW. First.\n\x01\nSec\x7fond\x0b para.\n\x1b \nThird.")
    assert body == "MOSCOW. First.\n\nSecond para.\n\nThird."
    assert dropped == 0


def test_title_suffix_removed() -> None:
    assert clean_title("  Putin meets Xi - TASS ") == ("Putin meets Xi", True)
    assert clean_title("FACTBOX: Grain deal — TASS") == ("FACTBOX: Grain deal", True)
    assert clean_title("TASS reports") == ("TASS reports", False)
    assert clean_title("Putin meets head of ITAR-TASS") == ("Putin meets head of ITAR-TASS", False)
    assert clean_title("Undecodable \ufffd byte - TASS") == ("Undecodable byte", True)


def test_datetimes_to_utc_naive_is_moscow_time() -> None:
    assert to_utc(datetime(2026, 10, 7, 12, 0)) == (
        datetime(2026, 10, 7, 9, 0, tzinfo=UTC),
        "naive",
    )
    plus5 = timezone(timedelta(hours=5))
    moment, note = to_utc(datetime(2026, 10, 7, 12, 0, tzinfo=plus5))
    assert moment == datetime(2026, 10, 7, 7, 0, tzinfo=UTC) and moment.tzinfo is UTC and note == ""
    assert to_utc("2026-10-07T12:00:00+03:00")[0] == datetime(2026, 10, 7, 9, 0, tzinfo=UTC)
    assert to_utc(1_790_000_000)[0] == datetime.fromtimestamp(1_790_000_000, UTC)
    assert to_utc("yesterday") == (None, "bad")
    assert to_utc(None) == (None, "")


def test_article_fields_cleaned_in_place() -> None:
    item = article(
        2150013,
        title="Drone attack repelled  - TASS",
        lead="   ",
        dateline=" MOSCOW ",
        mark="",
        published_at=datetime(2026, 10, 7, 12, 0),
        tags=[" Russia ", "Ukraine", "russia", "", "Ukraine"],
        images=[
            {"url": "//cdn-media.tass.ru/a.jpg", "caption": " A  photo ", "credit": "© TASS"},
            {"url": "https://cdn-media.tass.ru/a.jpg", "caption": "again", "credit": None},
            {"url": "", "caption": "no url", "credit": None},
        ],
        related=[
            {"id": 2150011, "url": "https://tass.com/world/2150011", "title": " Other  story "},
            {"id": 2150011, "url": "https://tass.com/world/2150011", "title": "twice"},
            {"id": 2150013, "url": "https://tass.com/politics/2150013", "title": "itself"},
            {"id": "x", "url": "https://tass.com/world/1", "title": "bad id"},
        ],
    )
    cleaned, stats = _clean(item)
    assert cleaned is item
    assert item.title == "Drone attack repelled"
    assert item.lead is None and item.mark is None and item.dateline == "MOSCOW"
    assert item.published_at == datetime(2026, 10, 7, 9, 0, tzinfo=UTC)
    assert item.tags == ["Russia", "Ukraine"]
    assert item.images == [
        {"url": "https://cdn-media.tass.ru/a.jpg", "caption": "A photo", "credit": "© TASS"}
    ]
    assert item.related == [
        {"id": 2150011, "url": "https://tass.com/world/2150011", "title": "Other story"}
    ]
    assert stats.get_value("tass/clean/items") == 1
    assert stats.get_value("tass/clean/title_suffix") == 1
    assert stats.get_value("tass/clean/naive_datetime") == 1
    assert stats.get_value("tass/clean/duplicate_tags") == 2
    assert stats.get_value("tass/clean/dropped_images") == 2
    assert stats.get_value("tass/clean/dropped_related") == 3


def test_failures_and_other_items_pass_untouched() -> None:
    failure = PageFailure(url="https://tass.com/politics/1", reason="http_status", detail="  x  ")
    assert _clean(failure)[0] == PageFailure(
        url="https://tass.com/politics/1", reason="http_status", detail="  x  "
    )
    other = {"title": "  not an article - TASS"}
    assert _clean(other)[0] == {"title": "  not an article - TASS"}
