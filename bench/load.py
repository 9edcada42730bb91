"""Sustained load: mentions arriving at --rate posts/s for --minutes, through --workers Celery
worker processes over real Redis and PostgreSQL, each post scored, routed and queued.

The bench process plays the poller: every second it stores that second's posts (the service a
poll uses) and enqueues their scoring after commit, as poll_account does. Each post comes from a
new customer, so it opens a case and its queue time is the case's queued_at. Measured in one run:

  bare      the ingest path alone: storing a second's posts and committing, per post
  pipeline  from a post's ingested_at to its case's queued_at (scored, routed, in the queue)
  memory    resident memory of the workers after warm-up and at the end

    .venv/bin/python -m bench.load [--rate 50] [--minutes 10] [--workers 4]

Targets: pipeline p95 at most 2 s; worker memory growth under 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import redis
from sqlalchemy import select

from bench.scratch import scratch_url
from bench.workers import start_worker

REPO = Path(__file__).resolve().parent.parent
TWCS = REPO / "socialcare" / "data" / "twcs_sample.csv"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379"
SCRATCH = "socialcare_bench_load"


def _rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (a worker and its pool), in KiB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database-url", default=DEFAULT_PG)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    args = parser.parse_args()

    database_url = scratch_url(args.database_url, SCRATCH)
    broker = f"{args.redis_url.rstrip('/')}/{random.randint(1, 15)}"
    redis.Redis.from_url(broker).flushdb()
    work = Path(tempfile.mkdtemp(prefix="sc-load-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS", "BROKER"))}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=broker,
        SOCIALCARE_DATA_DIR=str(work),
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=broker, SOCIALCARE_DATA_DIR=str(work))

    from socialcare.cases.models import Case
    from socialcare.config import get_settings
    from socialcare.db import session_scope
    from socialcare.flows.base import chunks, later
    from socialcare.migrate import upgrade
    from socialcare.posts.models import Post
    from socialcare.posts.service import ensure_account, ingest_posts
    from socialcare.sources.twcs import load_posts
    from workers.tasks import enqueue

    settings = get_settings()
    upgrade(settings)
    texts = [p for p in load_posts([TWCS]) if not p.is_brand]
    with session_scope(settings) as s:
        account = ensure_account(s, platform="twcs", handle="LoadBrand", source="replay")
        account_id = account.id
    workers = [start_worker(env) for _ in range(args.workers)]
    n = 0

    def arrive(count: int, prefix: str, pipeline: bool) -> float:
        """Store count new posts (one new customer each) in one transaction; seconds taken."""
        nonlocal n
        batch = []
        for _ in range(count):
            p = texts[n % len(texts)]
            batch.append(
                replace(
                    p,
                    external_id=f"{prefix}{n}",
                    author_external_id=f"{prefix}-c{n}",
                    author_handle=f"customer{n}",
                    brand_handle=None,
                )
            )
            n += 1
        start = time.perf_counter()
        with session_scope(settings) as s:
            acct = s.get(type(account), account_id)
            assert acct is not None
            stored = ingest_posts(session=s, account=acct, posts=batch, observed_at=None)
            if pipeline:
                for chunk in chunks(stored.to_score, settings.score_batch_size):
                    later(s, enqueue, "score_posts", chunk)
        return time.perf_counter() - start

    try:
        # Warm-up: every worker loads its models on a first batch before the clock starts.
        for _ in range(args.workers * 2):
            arrive(settings.score_batch_size, "warm", True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with session_scope(settings) as s:
                waiting = s.execute(select(Post.id).where(Post.stage != "routed").limit(1)).first()
            if waiting is None:
                break
            time.sleep(1.0)
        rss_start = sum(_rss_kib(w.pid) for w in workers)

        bare = [arrive(args.rate, "bare", False) / args.rate for _ in range(20)]

        began = time.monotonic()
        seconds = int(args.minutes * 60)
        late_ticks = 0
        for tick in range(seconds):
            arrive(args.rate, "live", True)
            pause = began + tick + 1 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                late_ticks += 1
        drain_deadline = time.monotonic() + 600
        while time.monotonic() < drain_deadline:
            with session_scope(settings) as s:
                left = s.execute(
                    select(Post.id)
                    .where(Post.external_id.like("live%"), Post.stage != "routed")
                    .limit(1)
                ).first()
            if left is None:
                break
            time.sleep(1.0)
        rss_end = sum(_rss_kib(w.pid) for w in workers)

        with session_scope(settings) as s:
            rows = s.execute(
                select(Post.ingested_at, Case.queued_at)
                .join(Case, Case.id == Post.case_id)
                .where(Post.external_id.like("live%"))
            ).all()
        latencies = [(q - i).total_seconds() for i, q in rows if q is not None]
        print(
            json.dumps(
                {
                    "rate_posts_per_s": args.rate,
                    "seconds": seconds,
                    "workers": args.workers,
                    "posts": len(latencies),
                    "late_arrival_ticks": late_ticks,
                    "bare_ingest_p50_ms": round(statistics.median(bare) * 1000, 2),
                    "bare_ingest_p95_ms": round(_pct(bare, 0.95) * 1000, 2),
                    "queued_p50_s": round(statistics.median(latencies), 3),
                    "queued_p95_s": round(_pct(latencies, 0.95), 3),
                    "queued_p95_over_bare_p95": round(_pct(latencies, 0.95) / _pct(bare, 0.95), 1),
                    "target_queued_p95_s": 2.0,
                    "workers_rss_start_mib": round(rss_start / 1024, 1),
                    "workers_rss_end_mib": round(rss_end / 1024, 1),
                    "rss_growth_pct": round((rss_end - rss_start) / rss_start * 100, 1),
                    "target_rss_growth_pct": 10.0,
                },
                indent=2,
            )
        )
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()


if __name__ == "__main__":
    main()
