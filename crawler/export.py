"""The archive as files: JSON Lines, CSV, Parquet of the articles; WARC of the raw pages.

The columns (``COLUMNS``, in this order; documented in the README and kept stable: a new column
is only ever added at the end) are the stored article's fields, without the internal
near-duplicate signatures (``minhash``, ``minhash_bands``):

``id, url, section, kind, title, lead, body, dateline, published_at, modified_at, tags, mark,
images, related, duplicate_of, content_hash, revision, extractor, first_seen_at,
last_seen_at, reextracted_at, extracted``

- JSON Lines: one object per article, keys in that order, times as ISO 8601 UTC strings with
  milliseconds (``2026-10-07T09:30:00.000Z``), missing values ``null``.
- CSV: a header row, then one row per article; lists (``tags``, ``images``, ``related``) and
  the provenance (``extracted``, an object) as their JSON text; times as in JSON; missing
  values empty.
- Parquet (pyarrow, the ``export`` extra): typed columns (``PARQUET_SCHEMA``): int64 ids,
  UTC millisecond timestamps, lists of strings and of structs, ``extracted`` as a
  map<string, string>; written in row groups of
  ``ROW_GROUP`` rows.
- WARC 1.1 (warcio, the ``export`` extra; gzip per record): a ``warcinfo`` record, then one
  ``response`` record per stored version (each ``pages`` document): the page's final URL,
  fetch time and server address, its status line, the archived headers and the body as
  stored (decoded: the transfer's ``Content-Encoding`` is not replayed, ``Content-Length`` is
  the body's), and ``WARC-Tass-Article-Id`` / ``WARC-Tass-Revision`` naming the version.

Every writer streams: it holds one row group (Parquet) or one row, whatever the archive's
size. ``row_of`` is also the items feed's serialisation (``pipelines.feed``).
"""

from __future__ import annotations

import csv
import http
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from crawler.archive import page_of

if TYPE_CHECKING:
    from crawler.mongo import Document

COLUMNS = (
    "id",
    "url",
    "section",
    "kind",
    "title",
    "lead",
    "body",
    "dateline",
    "published_at",
    "modified_at",
    "tags",
    "mark",
    "images",
    "related",
    "duplicate_of",
    "content_hash",
    "revision",
    "extractor",
    "first_seen_at",
    "last_seen_at",
    "reextracted_at",
    "extracted",
)
"""The exported fields, in their stable order."""

TIMES = frozenset(
    {"published_at", "modified_at", "first_seen_at", "last_seen_at", "reextracted_at"}
)
LISTS = frozenset({"tags", "images", "related"})
JSON_CELLS = LISTS | {"extracted"}
"""The columns a CSV cell holds as JSON text."""
FORMATS = ("jsonl", "csv", "parquet", "warc")
BINARY = frozenset({"parquet", "warc"})
ROW_GROUP = 5000
"""Rows per Parquet row group: what a Parquet export holds in memory at once."""


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z`` (what MongoDB keeps)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def row_of(doc: Document, columns: Iterable[str] = COLUMNS) -> dict[str, Any]:
    """The exported fields of a stored article (``_id`` as ``id``), Python values."""
    return {name: doc.get("_id" if name == "id" else name) for name in columns}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def json_line(row: dict[str, Any]) -> str:
    """One JSON Lines line (with its line end)."""
    return json.dumps(_jsonable(row), ensure_ascii=False, separators=(",", ":")) + "\n"


class JsonLinesWriter:
    def __init__(self, out: IO[bytes], columns: tuple[str, ...]) -> None:
        self.out = io.TextIOWrapper(out, encoding="utf-8", newline="\n", write_through=False)
        self.columns = columns

    def write(self, doc: Document) -> None:
        self.out.write(json_line(row_of(doc, self.columns)))

    def close(self) -> None:
        self.out.flush()
        self.out.detach()


class CsvWriter:
    def __init__(self, out: IO[bytes], columns: tuple[str, ...]) -> None:
        self.out = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
        self.columns = columns
        self.csv = csv.writer(self.out, lineterminator="\n")
        self.csv.writerow(columns)

    def write(self, doc: Document) -> None:
        self.csv.writerow(
            [self._cell(name, value) for name, value in row_of(doc, self.columns).items()]
        )

    @staticmethod
    def _cell(name: str, value: Any) -> Any:
        if value is None:
            return ""
        if name in JSON_CELLS:
            return json.dumps(_jsonable(value), ensure_ascii=False, separators=(",", ":"))
        if isinstance(value, datetime):
            return iso(value)
        return value

    def close(self) -> None:
        self.out.flush()
        self.out.detach()


def parquet_schema(columns: tuple[str, ...]) -> Any:
    """The Parquet schema of ``columns`` (pyarrow types)."""
    import pyarrow as pa

    time = pa.timestamp("ms", tz="UTC")
    types = {
        "id": pa.int64(),
        "duplicate_of": pa.int64(),
        "revision": pa.int64(),
        "tags": pa.list_(pa.string()),
        "images": pa.list_(
            pa.struct([("url", pa.string()), ("caption", pa.string()), ("credit", pa.string())])
        ),
        "related": pa.list_(
            pa.struct([("id", pa.int64()), ("url", pa.string()), ("title", pa.string())])
        ),
        "extracted": pa.map_(pa.string(), pa.string()),
    }
    return pa.schema(
        [(name, time if name in TIMES else types.get(name, pa.string())) for name in columns]
    )


class ParquetWriter:
    def __init__(self, out: IO[bytes], columns: tuple[str, ...]) -> None:
        import pyarrow.parquet as pq

        self.columns = columns
        self.schema = parquet_schema(columns)
        self.writer = pq.ParquetWriter(out, self.schema, compression="zstd")
        self.rows: list[dict[str, Any]] = []

    def write(self, doc: Document) -> None:
        self.rows.append(row_of(doc, self.columns))
        if len(self.rows) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()


class WarcWriter:
    """``response`` records of archived pages (``pages`` documents)."""

    def __init__(self, out: IO[bytes], software: str) -> None:
        from warcio.warcwriter import WARCWriter

        self.writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
        info = self.writer.create_warcinfo_record(
            "tass-archive.warc.gz",
            {"software": software, "format": "WARC File Format 1.1", "description": "tass.com"},
        )
        self.writer.write_record(info)

    def write(self, doc: Document) -> None:
        from warcio.statusandheaders import StatusAndHeaders

        page = page_of(doc)
        try:
            phrase = http.HTTPStatus(page.status).phrase
        except ValueError:
            phrase = "Unknown"
        headers = [(k, v) for k, v in page.headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(page.body))))
        http_headers = StatusAndHeaders(
            f"{page.status} {phrase}", headers, protocol=page.protocol or "HTTP/1.1"
        )
        warc_headers = {
            "WARC-Date": iso(page.fetched_at),
            "WARC-Tass-Article-Id": str(doc["article_id"]),
            "WARC-Tass-Revision": str(doc["revision"]),
        }
        if page.ip_address:
            warc_headers["WARC-IP-Address"] = page.ip_address
        record = self.writer.create_warc_record(
            page.final_url,
            "response",
            payload=io.BytesIO(page.body),
            http_headers=http_headers,
            warc_headers_dict=warc_headers,
        )
        self.writer.write_record(record)

    def close(self) -> None:
        self.writer.out.flush()
