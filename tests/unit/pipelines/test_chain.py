"""The four stages in the project's order, run by Scrapy's own item pipeline manager."""

from __future__ import annotations

from datetime import timedelta

from scrapy.pipelines import ItemPipelineManager

from crawler import settings as project_settings
from crawler.items import PageFailure

from .helpers import BASE_TIME, article, make_crawler, near_copy_body, run


def test_project_pipelines_end_to_end(mongo_uri, mongo_db_name, mongo_db) -> None:
    crawler = make_crawler(mongo_uri, mongo_db_name, ITEM_PIPELINES=project_settings.ITEM_PIPELINES)
    manager = ItemPipelineManager.from_crawler(crawler)
    original_body, copy_body = near_copy_body(11)
    items = [
        article(
            2150013,
            title="Drone attack repelled - TASS",
            body="{{newsPoint.title}}\n\n" + original_body + "\n\nРеклама",
            published_at=(BASE_TIME + timedelta(hours=3)).replace(tzinfo=None),  # Moscow time
            tags=["Russia", "Russia "],
        ),
        article(2150101, body=copy_body, published_at=BASE_TIME + timedelta(days=1)),
        article(2150103, body="Too short to be an article."),
        PageFailure(url="https://tass.com/politics/2150105", reason="http_status", status=404),
    ]

    async def body():
        await manager.open_spider_async()
        results = [await manager.process_item_async(item) for item in items]
        await manager.close_spider_async()
        return results

    results = run(body)
    assert isinstance(results[2], PageFailure)  # validate replaced the short article
    doc = mongo_db.articles.find_one({"_id": 2150013})
    assert doc["title"] == "Drone attack repelled"
    assert doc["body"] == original_body
    assert doc["tags"] == ["Russia"]
    assert doc["published_at"] == BASE_TIME.replace(tzinfo=None)  # naive UTC from the fixture
    assert mongo_db.articles.find_one({"_id": 2150101})["duplicate_of"] == 2150013
    assert mongo_db.articles.count_documents({}) == 2
    failures = {d["url"]: d for d in mongo_db.failures.find()}
    assert failures["https://tass.com/politics/2150103"]["reason"] == "invalid:body"
    assert failures["https://tass.com/politics/2150105"]["status"] == 404
    stats = crawler.stats
    assert stats.get_value("tass/store/inserted") == 2
    assert stats.get_value("tass/store/failures") == 2
    assert stats.get_value("tass/validate/invalid/body") == 1
