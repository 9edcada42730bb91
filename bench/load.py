"""Sustained load: mentions arriving at --rate posts/s for --minutes, through the Procfile's
process types (scorer, worker and beat, each its own command line) over real Redis and
PostgreSQL, each post scored, routed and queued.

The bench process plays the poller: every second it stores that second's posts (the service a
poll uses) and enqueues their scoring after commit, as poll_account does. Each post comes from a
new customer, so it opens a case and its queue time is the case's queued_at. Measured in one run:

  bare      the ingest path alone: storing a second's posts and committing, per post
  pipeline  from a post's ingested_at to its case's queued_at (scored, routed, in the queue)
  held      posts queued per second while they arrived, and the drain after the last arrival
  memory    resident memory of each process type (with its pool) after warm-up and at the end

    .venv/bin/python -m bench.load [--rate 50] [--minutes 10] [--scorers 1] [--workers 1]

Targets (issue 20): 50 posts/s for 10 minutes on 2 cores, pipeline p95 at most 2 s, resident
memory growth under 10%. A short run (--minutes 1) shows the shape, not the bar.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select, update

from bench.scratch import scratch_url
from bench.workers import start_process

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


def _memory(procs: dict[str, list[subprocess.Popen[bytes]]]) -> dict[str, int]:
    return {kind: sum(_rss_kib(p.pid) for p in ps) for kind, ps in procs.items()}


def _stop(procs: dict[str, list[subprocess.Popen[bytes]]]) -> None:
    every = [p for ps in procs.values() for p in ps]
    for p in every:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in every:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rate", type=int, default=50, help="posts arriving a second")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--scorers", type=int, default=1, help="scorer processes")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="WORKER_CONCURRENCY")
    parser.add_argument("--database-url", default=DEFAULT_PG)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    return parser.parse_args()


def main() -> None:
    args = _arguments()
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
        LOG_FORMAT="text",
        PYTHONPATH=str(REPO),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        WORKER_CONCURRENCY=str(args.worker_concurrency),
    )
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=broker, SOCIALCARE_DATA_DIR=str(work))

    from socialcare.config import get_settings
    from socialcare.migrations import upgrade

    settings = get_settings()
    upgrade(settings)
    counts = {"scorer": args.scorers, "worker": args.workers, "beat": 1}
    procs = {
        kind: [start_process(kind, env, (work / f"{kind}-{i}.log").open("wb")) for i in range(n)]
        for kind, n in counts.items()
    }
    try:
        result = _run(args, settings, procs)
    finally:
        _stop(procs)
    result["logs"] = str(work)
    print(json.dumps(result, indent=2))


def _run(
    args: argparse.Namespace, settings: Any, procs: dict[str, list[subprocess.Popen[bytes]]]
) -> dict[str, Any]:
    from socialcare.cases.models import Case
    from socialcare.db import session_scope
    from socialcare.flows.base import chunks, later
    from socialcare.posts.models import STAGE_IGNORED, Account, Post
    from socialcare.posts.service import ensure_account, ingest_posts
    from socialcare.sources.twcs import load_posts
    from workers.tasks import enqueue

    texts = [p for p in load_posts([TWCS]) if not p.is_brand]
    with session_scope(settings) as s:
        account_id = ensure_account(s, platform="twcs", handle="LoadBrand", source="replay").id
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
            acct = s.get(Account, account_id)
            assert acct is not None
            stored = ingest_posts(session=s, account=acct, posts=batch, observed_at=None)
            if pipeline:
                for chunk in chunks(stored.to_score, settings.score_batch_size):
                    later(s, enqueue, "score_posts", chunk)
        return time.perf_counter() - start

    def waiting(prefix: str) -> int:
        with session_scope(settings) as s:
            return int(
                s.execute(
                    select(func.count())
                    .select_from(Post)
                    .where(Post.external_id.like(f"{prefix}%"), Post.stage != "routed")
                ).scalar_one()
            )

    def wait_routed(prefix: str, limit: float) -> float:
        began = time.monotonic()
        while waiting(prefix) and time.monotonic() - began < limit:
            assert all(p.poll() is None for ps in procs.values() for p in ps), "a process died"
            time.sleep(1.0)
        return time.monotonic() - began

    # Warm-up: the scorer loads its models on a first batch before the clock starts.
    for _ in range(4):
        arrive(settings.score_batch_size, "warm", True)
    warm_s = wait_routed("warm", 600)
    rss_start = _memory(procs)
    bare = [arrive(args.rate, "bare", False) / args.rate for _ in range(20)]
    # The bare posts were only stored: they are no work (a score task also claims other waiting
    # posts, and the sweep would send them).
    with session_scope(settings) as s:
        s.execute(update(Post).where(Post.external_id.like("bare%")).values(stage=STAGE_IGNORED))

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
    left_at_end = waiting("live")
    drain_s = wait_routed("live", 900)
    rss_end = _memory(procs)

    with session_scope(settings) as s:
        rows = s.execute(
            select(Post.ingested_at, Case.queued_at)
            .join(Case, Case.id == Post.case_id)
            .where(Post.external_id.like("live%"))
        ).all()
    latencies = [(q - i).total_seconds() for i, q in rows if q is not None]
    arrived = seconds * args.rate
    total_start, total_end = sum(rss_start.values()), sum(rss_end.values())
    return {
        "processes": {kind: len(ps) for kind, ps in procs.items()},
        "worker_concurrency": args.worker_concurrency,
        "rate_posts_per_s": args.rate,
        "seconds": seconds,
        "posts": len(latencies),
        "late_arrival_ticks": late_ticks,
        "warm_up_s": round(warm_s, 1),
        "queued_during_arrival_per_s": round((arrived - left_at_end) / seconds, 1),
        "waiting_when_arrival_ended": left_at_end,
        "drain_after_arrival_s": round(drain_s, 1),
        "bare_ingest_p50_ms": round(statistics.median(bare) * 1000, 2),
        "bare_ingest_p95_ms": round(_pct(bare, 0.95) * 1000, 2),
        "queued_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "queued_p95_s": round(_pct(latencies, 0.95), 3) if latencies else None,
        "queued_p95_over_bare_p95": (
            round(_pct(latencies, 0.95) / _pct(bare, 0.95), 1) if latencies else None
        ),
        "target_queued_p95_s": 2.0,
        "rss_start_mib": {k: round(v / 1024, 1) for k, v in rss_start.items()},
        "rss_end_mib": {k: round(v / 1024, 1) for k, v in rss_end.items()},
        "rss_growth_pct": round((total_end - total_start) / total_start * 100, 1),
        "target_rss_growth_pct": 10.0,
    }


if __name__ == "__main__":
    main()
