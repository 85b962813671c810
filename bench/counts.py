"""The project's commands per article alone: one crawl at each worker count, no comparisons.

``python -m bench.counts --workers 1,2,4 --articles 1000`` crawls one replica
(``--no-hostile``, seed 7, as ``python -m bench`` does) with fresh servers per crawl and prints,
per crawl, MongoDB writes and reads and Redis round trips per article (the same counters as the
crawl table of ``python -m bench``; the round trips also by kind), the server's opcounters,
store batches and dedupe look-ups, and the load when it ended: a quick check of what a change
to batching buys, in a minute or two instead of the full benchmark's eight.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.crawl import run_crawl
from replica.launch import ReplicaProcess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--articles", type=int, default=1000)
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    replica = ReplicaProcess(articles=args.articles, seed=7, extra_args=["--no-hostile"])
    replica.start()
    try:
        assert replica.proc is not None
        with tempfile.TemporaryDirectory(prefix="tass-bench-counts-") as tmp:
            urls = Path(tmp) / "urls.txt"
            truth = replica.truth()
            urls.write_text("".join(f"{replica.base_url}{a['path']}\n" for a in truth["articles"]))
            url, pid = replica.base_url, replica.proc.pid
            # Once first: the replica renders each page on first request.
            run_crawl("ceiling", replica_url=url, replica_pid=pid, urls=urls)
            for workers in counts:
                r = run_crawl(
                    "project", replica_url=url, replica_pid=pid, urls=urls, workers=workers
                )
                n = r.articles
                ops = {k: v for k, v in r.extra["mongo_counters"].items() if v}
                stats = r.extra["tass_stats"]
                print(
                    f"{workers} worker(s): {n} articles in {r.seconds:.1f} s ({r.rate:.1f}/s), "
                    f"load {r.load:.1f}: MongoDB writes/article {r.mongo_writes / n:.3f}, "
                    f"reads/article {r.mongo_reads / n:.3f}, Redis round trips/article "
                    f"{r.redis_round_trips / n:.2f}; opcounters {ops}; store batches "
                    f"{stats.get('tass/store/batches', 0)}, dedupe look-ups "
                    f"{stats.get('tass/dedupe/lookups', 0)}",
                    flush=True,
                )
                prefix = "tass/frontier/redis_round_trips/"
                trips = {k[len(prefix) :]: v for k, v in stats.items() if k.startswith(prefix)}
                print(
                    "  Redis round trips/article by kind: "
                    + ", ".join(
                        f"{kind} {v / n:.3f}"
                        for kind, v in sorted(trips.items(), key=lambda kv: -kv[1])
                        if v
                    )
                    + f"; requests/article {r.extra['requests'] / n:.2f}, leases/pop "
                    + f"{stats.get('tass/frontier/leased', 0) / max(1, trips.get('pop', 0)):.1f}"
                    + f", places kept {stats.get('tass/frontier/site_places_kept', 0)}",
                    flush=True,
                )
                print(
                    f"  CPU ms/article: worker(s) {r.crawler_cpu / n * 1000:.2f}, Redis "
                    f"{r.redis_cpu / n * 1000:.2f}, MongoDB "
                    f"{r.mongo_cpu / n * 1000:.2f}",
                    flush=True,
                )
    finally:
        replica.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
