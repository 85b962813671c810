"""``scrapy report``: what the store holds (articles by section, failures by reason...)."""

from __future__ import annotations

import argparse
import json
from typing import ClassVar

import pymongo
from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler.report import format_report, store_report


class Command(ScrapyCommand):
    requires_project = True
    default_settings: ClassVar[dict[str, object]] = {"LOG_ENABLED": False}

    def short_desc(self) -> str:
        return "Print what MongoDB holds: articles by section, failures by reason, duplicates"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--json", action="store_true", help="print JSON")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        uri = self.settings.get("MONGO_URI")
        if not uri:
            raise UsageError(
                "MONGO_URI is empty: point it at the crawl's MongoDB", print_help=False
            )
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=10_000
        )
        try:
            report = store_report(client[self.settings.get("MONGO_DATABASE")])
        finally:
            client.close()
        print(json.dumps(report, indent=2) if opts.json else format_report(report))
