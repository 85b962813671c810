"""Command line: ``python -m replica --port 8080 --articles 3000 --seed 7``.

Prints exactly one line first, ``replica listening on http://<host>:<port>``, flushed, then
serves until interrupted. ``--truth FILE`` writes the ground truth before that line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from datetime import date
from pathlib import Path

from replica.config import (
    DEFAULT_ARTICLES,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_SEED,
    DEFAULT_SITEMAP_CHUNK,
    DEFAULT_SLOW_MS,
    DEFAULT_START_DATE,
    MARKUPS,
    SITEMAP_LAYOUTS,
    ReplicaConfig,
)
from replica.server import ReplicaServer


def _fraction(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0.0 <= share <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1, got {value}")
    return share


def _non_negative(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return number


def _positive(value: str) -> int:
    number = _non_negative(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return number


def _port(value: str) -> int:
    number = _non_negative(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"must be a port in 0..65535, got {value}")
    return number


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from None


def _delay(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return seconds


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m replica", description="Offline replica of tass.com over HTTP."
    )
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT, help="0 picks a free port")
    p.add_argument("--base-url", help="absolute base for links (default http://HOST:PORT)")
    p.add_argument(
        "--articles",
        type=_positive,
        default=DEFAULT_ARTICLES,
        help="archive size at day 0 (default %(default)s)",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--day", type=_non_negative, default=0, help="start N days forward")
    p.add_argument(
        "--start-date",
        type=_date,
        default=DEFAULT_START_DATE,
        help="the site's today at day 0 (default %(default)s)",
    )
    p.add_argument("--truth", type=Path, help="write the ground truth JSON here, then serve")
    p.add_argument("--crawl-delay", type=_delay, help="add Crawl-delay to robots.txt")
    p.add_argument(
        "--hostile",
        dest="hostile",
        action="store_true",
        default=True,
        help="serve and link the hostile pages (default)",
    )
    p.add_argument("--no-hostile", dest="hostile", action="store_false")
    p.add_argument(
        "--fault-503",
        type=_fraction,
        default=0.0,
        metavar="FRACTION",
        help="share of paths answering 503 to their first request",
    )
    p.add_argument(
        "--fault-429",
        type=_fraction,
        default=0.0,
        metavar="FRACTION",
        help="share of paths answering 429 (Retry-After: 1) to their first request",
    )
    p.add_argument(
        "--fault-slow",
        type=_fraction,
        default=0.0,
        metavar="FRACTION",
        help="share of paths answering after --slow-ms",
    )
    p.add_argument("--slow-ms", type=_non_negative, default=DEFAULT_SLOW_MS)
    p.add_argument(
        "--fault-challenge",
        type=_fraction,
        default=0.0,
        metavar="FRACTION",
        help="share of paths answering a bot-challenge page (200, no content) every time; "
        "1 challenges every URL (the site not serving us)",
    )
    p.add_argument(
        "--markup",
        choices=MARKUPS,
        default="default",
        help="article and listing markup: the default guesses or the alternative shapes",
    )
    p.add_argument(
        "--sitemap-layout",
        choices=SITEMAP_LAYOUTS,
        default="default",
        help="how the news sitemaps are cut into files (default %(default)s)",
    )
    p.add_argument(
        "--sitemap-chunk",
        type=_positive,
        default=DEFAULT_SITEMAP_CHUNK,
        help="entries per file of the rolling layout (default %(default)s)",
    )
    p.add_argument(
        "--sitemap-no-lastmod",
        type=_fraction,
        default=0.0,
        metavar="FRACTION",
        help="share of sitemap entries without lastmod (picked by article id)",
    )
    return p


def config_from_args(argv: list[str] | None = None) -> tuple[ReplicaConfig, Path | None]:
    p = parser()
    args = p.parse_args(argv)
    try:
        config = ReplicaConfig(
            articles=args.articles,
            seed=args.seed,
            day=args.day,
            start_date=args.start_date,
            host=args.host,
            port=args.port,
            base_url=args.base_url,
            crawl_delay=args.crawl_delay,
            hostile=args.hostile,
            fault_503=args.fault_503,
            fault_429=args.fault_429,
            fault_slow=args.fault_slow,
            fault_challenge=args.fault_challenge,
            slow_ms=args.slow_ms,
            markup=args.markup,
            sitemap_layout=args.sitemap_layout,
            sitemap_chunk=args.sitemap_chunk,
            sitemap_no_lastmod=args.sitemap_no_lastmod,
        )
    except ValueError as exc:
        p.error(str(exc))
    return config, args.truth


async def serve(config: ReplicaConfig, truth: Path | None) -> None:
    server = ReplicaServer(config)
    try:
        await server.start()
    except OSError as exc:
        print(f"replica: cannot bind {config.host}:{config.port}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if truth is not None:
        truth.write_bytes(server.site.truth_bytes())
    sys.stdout.write(f"replica listening on {server.listen_url}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    config, truth = config_from_args(argv)
    asyncio.run(serve(config, truth))


if __name__ == "__main__":
    main()
