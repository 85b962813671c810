"""``crawler.mongo.stream_by_id``: a long read that survives a cancelled cursor.

Against the real MongoDB-protocol server; the fault is injected between the collection and its
reader (a cursor that fails part-way, as pymongo's does when a pool reset cancels it)."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import AutoReconnect, OperationFailure

from crawler import mongo


class Failing:
    """The collection, whose first ``times`` cursors fail after ``after`` documents."""

    def __init__(self, collection: Any, after: int, times: int, error: Exception) -> None:
        self.collection, self.after, self.times, self.error = collection, after, times, error
        self.name = collection.name
        self.queries: list[Any] = []

    def find(self, query: Any, projection: Any = None) -> Any:
        self.queries.append(query)
        return _Cursor(self, self.collection.find(query, projection))


class _Cursor:
    def __init__(self, owner: Failing, cursor: Any) -> None:
        self.owner, self.cursor = owner, cursor

    def sort(self, *args: Any) -> _Cursor:
        self.cursor = self.cursor.sort(*args)
        return self

    def batch_size(self, n: int) -> _Cursor:
        self.cursor = self.cursor.batch_size(n)
        return self

    def __iter__(self) -> Any:
        for n, doc in enumerate(self.cursor):
            if n == self.owner.after and self.owner.times > 0:
                self.owner.times -= 1
                raise self.owner.error
            yield doc


def test_a_cancelled_cursor_resumes_after_the_last_id_and_loses_nothing(mongo_db) -> None:
    mongo_db.articles.insert_many([{"_id": i, "kind": "news" if i % 3 else "gallery"}
                                   for i in range(1, 301)])  # fmt: skip
    query = {"kind": "news"}
    wanted = [d["_id"] for d in mongo_db.articles.find(query).sort("_id", 1)]
    waits: list[float] = []
    failing = Failing(mongo_db.articles, after=70, times=2, error=AutoReconnect("cancelled"))
    got = [d["_id"] for d in mongo.stream_by_id(failing, query, batch_size=25, sleep=waits.append)]
    assert got == wanted  # every document once, in order
    assert len(failing.queries) == 3 and len(waits) == 2
    assert failing.queries[1] == {"$and": [query, {"_id": {"$gt": wanted[69]}}]}


def test_a_read_that_keeps_failing_or_fails_for_good_raises(mongo_db) -> None:
    mongo_db.articles.insert_many([{"_id": i} for i in range(1, 11)])
    # Failing part-way again and again still makes progress (each failure resumes further on);
    # failing before the first document does not: given up after STREAM_RESUMES tries.
    again = Failing(mongo_db.articles, after=3, times=99, error=AutoReconnect("cancelled"))
    assert [d["_id"] for d in mongo.stream_by_id(again, {}, sleep=lambda _s: None)] == list(
        range(1, 11)
    )
    endless = Failing(mongo_db.articles, after=0, times=99, error=AutoReconnect("cancelled"))
    with pytest.raises(AutoReconnect):
        list(mongo.stream_by_id(endless, {}, sleep=lambda _s: None))
    assert len(endless.queries) == mongo.STREAM_RESUMES + 1
    refused = Failing(mongo_db.articles, after=3, times=1, error=OperationFailure("bad", 2))
    with pytest.raises(OperationFailure):
        list(mongo.stream_by_id(refused, {}, sleep=lambda _s: None))
    assert len(refused.queries) == 1
