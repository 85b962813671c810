"""``make demo``: an offline crawl of the replica by two local workers, then a report.

Starts the replica, then N ``scrapy crawl tass`` processes at once against the embedded Redis
and MongoDB (the zero-config local run, data in ``.tass/demo``), waits for them, and prints
what was stored, next to the replica's ground truth.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from crawler.embedded import LocalServices
from crawler.mongo import MongoConfig
from crawler.report import format_report, store_report
from replica.launch import ReplicaProcess

DEMO_DB = "tass_demo"
DEMO_PREFIX = "tass-demo"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=1000, help="replica size")
    parser.add_argument("--workers", type=int, default=2, help="local crawl processes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", default=".tass/demo")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.articles < 1:
        parser.error("--workers and --articles must be >= 1")

    data_dir = Path(args.data_dir)
    services = LocalServices(data_dir)
    redis_server, mongo_server, _ = services.acquire()
    replica = ReplicaProcess(articles=args.articles, seed=args.seed).start()
    try:
        # A clean slate: the demo's own Redis keys and database only.
        client = redis.Redis.from_url(redis_server.url)
        stale = list(client.scan_iter(match=f"{DEMO_PREFIX}:*"))
        if stale:
            client.delete(*stale)
        client.close()
        mongo = MongoConfig(uri=mongo_server.url, database=DEMO_DB)
        with mongo.open() as db:
            db.client.drop_database(DEMO_DB)

        env = {
            **os.environ,
            "TASS_BASE_URL": replica.base_url,
            "TASS_DATA_DIR": str(data_dir),
            "REDIS_URL": "",
            "MONGO_URI": "",
            "MONGO_DATABASE": DEMO_DB,
            "TASS_REDIS_PREFIX": DEMO_PREFIX,
            "CRAWL_RATE": "400",
            "CONCURRENT_REQUESTS": "16",
            "LOG_LEVEL": "WARNING",
        }
        print(f"replica at {replica.base_url} ({args.articles} articles); "
              f"crawling with {args.workers} workers...", flush=True)  # fmt: skip
        started = time.monotonic()
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "scrapy", "crawl", "tass", "-a", "since=all"], env=env
            )
            for _ in range(args.workers)
        ]
        codes = [w.wait() for w in workers]
        elapsed = time.monotonic() - started
        truth = replica.truth()
        with mongo.open() as db:
            report = store_report(db)
    finally:
        replica.stop()
        services.release()

    reachable = sum(1 for a in truth["articles"] if a.get("reachable", True))
    print(f"\nworkers exited with {codes} after {elapsed:.1f} s")
    print(f"replica ground truth: {reachable} reachable articles, "
          f"{len(truth.get('hostile', []))} hostile URLs")  # fmt: skip
    print(format_report(report))
    return 0 if all(code == 0 for code in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
