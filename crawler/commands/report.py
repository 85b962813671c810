"""``scrapy report``: what the store holds (articles by section, failures by reason...)."""

from __future__ import annotations

import argparse
import json
from typing import ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import NotConfigured, UsageError

from crawler.mongo import MongoConfig
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
        try:
            config = MongoConfig.from_settings(self.settings)
        except (NotConfigured, ValueError) as exc:
            raise UsageError(f"{exc} (point it at the crawl's MongoDB)", print_help=False) from exc
        with config.open() as db:
            report = store_report(db)
        print(json.dumps(report, indent=2) if opts.json else format_report(report))
