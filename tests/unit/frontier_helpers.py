"""Helpers for frontier tests: an asyncio Redis client on the session's server, a spider."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from scrapy.utils.test import get_crawler

from crawler.spiders.tass import TassSpider

T = TypeVar("T")


def run(make: Callable[[Redis], Awaitable[T]], url: str) -> T:
    """Run ``make(client)`` on a fresh event loop with its own client."""

    async def main() -> T:
        client = Redis.from_url(url)
        try:
            return await make(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def spider(**settings: Any) -> TassSpider:
    defaults: dict[str, Any] = {"TASS_BASE_URL": "https://tass.com", "TASS_SINCE_DAYS": 7}
    crawler = get_crawler(TassSpider, settings_dict={**defaults, **settings})
    instance = TassSpider.from_crawler(crawler)
    crawler.spider = instance
    return instance


async def enter_site(queue: Any, budget: Any, token: str) -> int:
    """One token asks for a place (``lua.SITE``, no send time): -1 let in, else its place."""
    answer = await queue.site(budget, token, ask=[token], times_per_place=0)
    return int(answer.places[0])


async def leave_site(queue: Any, budget: Any, *tokens: str) -> None:
    """Tokens give back their places, or their places in the line (``lua.SITE``)."""
    await queue.site(budget, "", left=tokens)


async def reserve_sends(queue: Any, budget: Any, sender: str, k: int) -> Any:
    """Up to ``k`` send times of the cluster's budget (``lua.SITE``, no place asked)."""
    return await queue.site(budget, sender, more_times=k, max_times=k)
