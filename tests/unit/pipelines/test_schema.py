"""The stored document's helpers: ``plain_fields`` is ``ItemAdapter.asdict`` without its cost."""

from __future__ import annotations

from itemadapter import ItemAdapter

from crawler.items import PageFailure
from pipelines.schema import article_doc, plain_fields

from .helpers import article


def test_plain_fields_is_what_the_item_adapter_gives_and_copies_every_container() -> None:
    item = article(7)
    item.images = [{"url": "https://tass.com/i.jpg", "caption": "c", "credit": None}]
    item.related = [{"id": 3, "url": "https://tass.com/world/3", "title": "t"}]
    item.extracted = {"title": "ld"}
    item.minhash, item.minhash_bands = list(range(64)), list(range(10))
    failure = PageFailure(url="https://tass.com/world/9", reason="http_500", status=500)
    for one in (item, failure):
        assert plain_fields(one) == ItemAdapter(one).asdict()
    data = plain_fields(item)
    data["images"][0]["caption"] = "changed"
    data["tags"].append("changed")
    data["extracted"]["lead"] = "changed"
    assert item.images[0]["caption"] == "c" and "changed" not in item.tags
    assert item.extracted == {"title": "ld"}
    assert "fetched" not in plain_fields(item, drop=("fetched",))


def test_the_article_document_holds_every_field_but_the_raw_page_and_its_history() -> None:
    item = article(8)
    item.failed_before = True
    item.stored_as_is = True
    doc = article_doc(item)
    expected = ItemAdapter(item).asdict()
    expected.pop("fetched")
    assert expected.pop("failed_before") is True
    assert expected.pop("stored_as_is") is True
    expected["_id"] = expected.pop("id")
    assert doc == expected
