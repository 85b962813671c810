"""``scrapy status``: the cluster now (``crawler.status``), from any machine that reaches Redis
and MongoDB (``docker compose run --rm worker scrapy status``). Read-only.

A table by default; ``--json`` prints the status as JSON (with ``--watch``, one JSON document
per line); ``--watch [SECONDS]`` refreshes it every 2 s (or SECONDS) until interrupted.
Without MongoDB (``MONGO_URI`` empty or the server away) the Redis part is shown and
``store`` says why the rest is not; without Redis the command fails (exit 69).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import NotConfigured, UsageError

from crawler import defaults
from crawler.embedded import LocalServices
from crawler.frontier.config import FrontierConfig
from crawler.frontier.health import transient
from crawler.frontier.redis import open_redis
from crawler.mongo import MongoConfig
from crawler.outcome import EXIT_UNAVAILABLE
from crawler.redact import redact
from crawler.status import add_store, format_status, read_status

if TYPE_CHECKING:
    from scrapy.settings import Settings

STATUS_MONGO_TIMEOUT = 3.0
"""Seconds ``scrapy status`` waits for MongoDB before it shows the rest without it."""


class Command(ScrapyCommand):
    requires_project = True
    default_settings: ClassVar[dict[str, object]] = {"LOG_LEVEL": "WARNING"}

    def short_desc(self) -> str:
        return "Show the cluster now: the run, the queue, the workers, the last runs, the store"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument(
            "--watch",
            nargs="?",
            type=float,
            const=2.0,
            default=None,
            metavar="SECONDS",
            help="refresh every SECONDS (default 2) until interrupted",
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        if args:
            raise UsageError("scrapy status takes no arguments", print_help=False)
        if opts.watch is not None and not opts.watch > 0:
            raise UsageError(f"--watch {opts.watch}: must be > 0 seconds", print_help=False)
        local_servers(self.settings)
        try:
            config = FrontierConfig.from_settings(self.settings)
        except ValueError as exc:
            raise UsageError(str(exc), print_help=False) from exc
        mongo: MongoConfig | None = None
        mongo_error = ""
        try:
            found = MongoConfig.from_settings(self.settings)
            mongo = MongoConfig(found.uri, found.database, STATUS_MONGO_TIMEOUT)
        except (NotConfigured, ValueError) as exc:
            mongo_error = str(exc)
        try:
            asyncio.run(self.show(config, mongo, mongo_error, opts.json, opts.watch))
        except KeyboardInterrupt:
            pass
        except Exception as exc:
            if not transient(exc):
                raise
            print(f"tass-crawler: Redis unreachable: {redact(str(exc))}", file=sys.stderr)
            self.exitcode = EXIT_UNAVAILABLE

    async def show(
        self,
        config: FrontierConfig,
        mongo: MongoConfig | None,
        mongo_error: str,
        as_json: bool,
        watch: float | None,
    ) -> None:
        client = open_redis(config.redis_url)
        try:
            with contextlib.ExitStack() as stack:
                db = stack.enter_context(mongo.open()) if mongo is not None else None
                while True:
                    status = await read_status(client, config.keys, stale_after=config.worker_stale)
                    await asyncio.to_thread(add_store, status, db, mongo_error)
                    self.print(status, as_json, watch)
                    if watch is None:
                        return
                    await asyncio.sleep(watch)
        finally:
            await client.aclose()

    def print(self, status: dict[str, Any], as_json: bool, watch: float | None) -> None:
        if as_json:
            text = json.dumps(status, default=str, indent=None if watch else 2)
        else:
            text = format_status(status)
            if watch is not None and sys.stdout.isatty():
                text = "\x1b[H\x1b[2J" + text  # redraw in place
            elif watch is not None:
                text += "\n"
        print(text, flush=True)


def local_servers(settings: Settings) -> None:
    """With ``REDIS_URL`` and ``MONGO_URI`` both empty (the zero-config local run), the
    embedded servers a local crawl runs under ``TASS_DATA_DIR``; an error when none does."""
    if settings.get("REDIS_URL") or settings.get("MONGO_URI"):
        return
    root = Path(settings.get("TASS_DATA_DIR") or defaults.TASS_DATA_DIR)
    redis, mongo = LocalServices(root).running()
    if redis is None:
        raise UsageError(
            f"REDIS_URL and MONGO_URI are empty and no local crawl runs its embedded servers "
            f"under {root}: set them to the crawl's servers",
            print_help=False,
        )
    settings.set("REDIS_URL", redis.url, priority="cmdline")
    if mongo is not None:
        settings.set("MONGO_URI", mongo.url, priority="cmdline")
