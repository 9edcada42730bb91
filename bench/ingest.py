"""Ingestion throughput: X mentions from an HTTP page to a committed row, against a raw bulk insert.

The X API stand-in of the tests (tests/standins/x_api.py) serves real customer tweets over real
HTTP from a process of its own (as the real API would be: its JSON building does not share this
process's interpreter). The poll flow runs as a worker runs it: the real tweepy client, the
rate-limit budget in real Redis, each page's posts, reads and cursors committed to PostgreSQL in
one transaction. Mentions are published in rounds that stay inside the 800-mention window, and
every round is polled to the end; right after each round, the rows it stored are read back and
inserted raw, so that every round is measured against its own baseline under the machine's load
of that moment (this machine is shared: its speed varies from second to second):

  ingest    posts per second of the polls (HTTP request to committed row)
  bulk      the same rows inserted into a copy of the posts table (its indexes and foreign keys
            included) a page at a time: one executemany INSERT (sent as multi-row INSERTs) and
            one commit per page, nothing else
  ratio     ingest over bulk for the whole run (total seconds of each), and the median, lowest
            and highest of the rounds' own ratios
  requests  requests made per 1,000 mentions, by endpoint, against the minimum (a page of
            X_PAGE_SIZE per request: 10 at 100 a page)

Target: ingest at least 0.5 of bulk over the run. The seconds are split into storing pages
(the page's statement: cursors, posts, billed reads, rate windows; then what follows from it)
and the rest (HTTP, tweepy, parsing, the Redis budget, the lease, the commit).

    .venv/bin/python -m bench.ingest [--mentions 8000] [--round 700] [--page-size 100]
                                     [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import multiprocessing
import os
import statistics
import time
import uuid
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import MetaData, Table, func, insert, select, text

from bench.scratch import scratch_url

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
SCRATCH = "socialcare_bench_ingest"
BRAND = "AcmeCare"


def _serve(conn: Connection, mentions: int) -> None:
    """The stand-in's process: answers HTTP, and the bench's commands over conn."""
    from tests.conftest import SHARED_DATA
    from tests.standins.x_api import XStandIn

    csv = SHARED_DATA / "twcs" / "spotifycares_inbound_15k.csv"
    api = XStandIn(csv, brand=BRAND, mentions=mentions, customers=1500)
    conn.send(api.start())
    while True:
        command, arg = conn.recv()
        if command == "release":
            conn.send(api.release(arg))
        elif command == "stats":
            answering = sum(end - start for _, start, end in api.calls)
            conn.send(
                {"requests": dict(api.requests), "errors": list(api.errors), "answering": answering}
            )
        else:
            api.stop()
            conn.send(None)
            return


class StandIn:
    def __init__(self, mentions: int) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(child, mentions), daemon=True
        )
        self.process.start()
        self.base_url: str = self.conn.recv()

    def call(self, command: str, arg: Any = None) -> Any:
        self.conn.send((command, arg))
        return self.conn.recv()

    def stop(self) -> None:
        self.call("stop")
        self.process.join(timeout=10)


def _bulk_table(engine: Any) -> Table:
    """posts_bulk: an empty copy of posts with its indexes and foreign keys."""
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS posts_bulk"))
        conn.execute(text("CREATE TABLE posts_bulk (LIKE posts INCLUDING ALL)"))
        # LIKE copies indexes, not foreign keys: the rows are checked as they are in posts.
        keys = conn.execute(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'posts'::regclass AND contype = 'f'"
            )
        ).scalars()
        for key in list(keys):
            conn.execute(text(f"ALTER TABLE posts_bulk ADD {key}"))
    return Table("posts_bulk", MetaData(), autoload_with=engine)


def _bulk(engine: Any, table: Table, rows: list[dict[str, Any]], page: int) -> float:
    """Seconds to insert rows into table a page at a time, one executemany INSERT and one
    commit each."""
    started = time.perf_counter()
    for i in range(0, len(rows), page):
        with engine.begin() as conn:
            conn.execute(insert(table), rows[i : i + page])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mentions", type=int, default=8000)
    parser.add_argument("--round", type=int, default=700, help="mentions published per poll")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the polls to FILE")
    args = parser.parse_args()
    if not 0 < args.round <= 800:
        parser.error("--round must stay inside the 800-mention window (1 to 800)")

    from socialcare import config, flows
    from socialcare.db import get_engine, session_scope
    from socialcare.migrations import upgrade
    from socialcare.posts.models import Post
    from socialcare.posts.service import ensure_account
    from socialcare.sources import registry

    standin = StandIn(args.mentions)
    url = scratch_url(args.database_url, SCRATCH)
    os.environ.update(
        {
            "DATABASE_URL": url,
            "REDIS_URL": args.redis_url,
            "REDIS_NAMESPACE": f"bench-ingest-{uuid.uuid4().hex[:8]}",
            "X_BEARER_TOKEN": "bearer",
            "X_API_KEY": "k",
            "X_API_SECRET": "s",
            "X_ACCESS_TOKEN": "t",
            "X_ACCESS_TOKEN_SECRET": "ts",
            "X_API_BASE_URL": standin.base_url,
            "X_PAGE_SIZE": str(args.page_size),
            "POLL_INTERVAL_SECONDS": "60",
        }
    )
    config.get_settings.cache_clear()
    registry._cache.clear()
    settings = config.get_settings()
    upgrade(settings)
    engine = get_engine(settings)
    with session_scope(settings) as session:
        account_id = ensure_account(session, platform="x", handle=BRAND, source="x", polled=True).id

    from socialcare.flows import polling

    store_page = polling._store_page
    store_s = [0.0]

    def timed_store_page(*a: Any, **kw: Any) -> int:
        started = time.perf_counter()
        try:
            return store_page(*a, **kw)
        finally:
            store_s[0] += time.perf_counter() - started

    def poll() -> int:
        return flows.poll_account(account_id, enqueue=lambda *a: None, settings=settings)

    standin.call("release", 1)  # the first poll sets the cursors (and looks the brand up)
    poll()
    before = standin.call("stats")["requests"]
    posts = Table("posts", MetaData(), autoload_with=engine)
    bulk_table = _bulk_table(engine)
    with engine.connect() as conn:
        last_id = conn.execute(select(func.max(Post.id))).scalar_one()
    stored, read_back, polls, seconds, cpu_s, bulk_s = 0, 0, 0, 0.0, 0.0, 0.0
    ratios: list[float] = []
    answering_before = standin.call("stats")["answering"]
    store_s[0] = 0.0
    polling._store_page = timed_store_page  # type: ignore[assignment]
    profiler = cProfile.Profile() if args.profile else None
    left = args.mentions - 1
    while left > 0:
        n = standin.call("release", min(args.round, left))
        left -= n
        started, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        found = poll()
        if profiler:
            profiler.disable()
        took = time.perf_counter() - started
        cpu_s += time.process_time() - cpu
        # The round's rows, inserted raw right after it (the machine as it is now).
        with engine.connect() as conn:
            query = select(posts).where(posts.c.id > last_id).order_by(posts.c.id)
            rows = [dict(r._mapping) for r in conn.execute(query)]
        last_id = rows[-1]["id"] if rows else last_id
        for row in rows:
            del row["id"]
        bulk_took = _bulk(engine, bulk_table, rows, args.page_size)
        stored, read_back, polls = stored + found, read_back + len(rows), polls + 1
        seconds, bulk_s = seconds + took, bulk_s + bulk_took
        if found and rows:
            ratios.append((found / took) / (len(rows) / bulk_took))
    stats = standin.call("stats")
    standin.stop()
    engine.dispose()
    if profiler:
        profiler.dump_stats(args.profile)
    requests = {k: v - before.get(k, 0) for k, v in stats["requests"].items()}
    requests = {k: v for k, v in requests.items() if v}
    published = args.mentions - 1

    per_1000 = {k: round(v * 1000 / published, 1) for k, v in requests.items()}
    ingest_rate = stored / seconds
    bulk_rate = read_back / bulk_s
    print(
        json.dumps(
            {
                "mentions": published,
                "rows_stored": stored,
                "rows_read_back": read_back,
                "polls": polls,
                "page_size": args.page_size,
                "ingest_posts_per_s": round(ingest_rate, 1),
                "bulk_insert_posts_per_s": round(bulk_rate, 1),
                "ingest_over_bulk": round(ingest_rate / bulk_rate, 2),
                "ingest_over_bulk_by_poll": {
                    "median": round(statistics.median(ratios), 2),
                    "lowest": round(min(ratios), 2),
                    "highest": round(max(ratios), 2),
                },
                "seconds": {
                    "polls": round(seconds, 2),
                    "storing_pages": round(store_s[0], 2),
                    "fetching_and_committing": round(seconds - store_s[0], 2),
                    "polls_cpu": round(cpu_s, 2),
                    "standin_answering": round(stats["answering"] - answering_before, 2),
                    "bulk_insert": round(bulk_s, 2),
                },
                "target_ingest_over_bulk": 0.5,
                "requests_per_1000_mentions": per_1000,
                "requests_per_1000_total": round(sum(per_1000.values()), 1),
                "minimum_per_1000": math.ceil(1000 / args.page_size),
                "standin_errors": stats["errors"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
