"""Scoring throughput: the scoring task through Celery against the bare batched model.

Measured in one run on the same posts (TWCS texts), so the ratio is meaningful on a shared,
noisy machine:

  bare    the scorer (scoring.scorer.get_scorer: both heads, one encoder pass) on batches of
          SCORE_BATCH_SIZE
  flow    socialcare's score step in this process (models + urgency + database writes)
  celery  the score_posts task run by a real worker over the embedded broker and SQLite

    .venv/bin/python -m bench.scoring --posts 512

Prints posts/s for each and the ratios celery/bare and flow/bare.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.workers import start_worker

if TYPE_CHECKING:
    from socialcare.config import Settings
    from socialcare.sources.base import IncomingPost

REPO = Path(__file__).resolve().parent.parent
TWCS = REPO / "socialcare" / "data" / "twcs_sample.csv"


def _posts(n: int) -> list[IncomingPost]:
    from dataclasses import replace

    from socialcare.sources.twcs import load_posts

    customers = [p for p in load_posts([TWCS]) if not p.is_brand]
    out = []
    for i in range(n):
        p = customers[i % len(customers)]
        out.append(replace(p, external_id=f"b{i}", brand_handle="benchbrand"))
    return out


def _store(settings: Settings, posts: list[IncomingPost]) -> list[int]:
    from socialcare.db import session_scope
    from socialcare.posts.service import ensure_account, ingest_posts

    with session_scope(settings) as s:
        account = ensure_account(session=s, platform="twcs", handle="benchbrand", source="replay")
        result = ingest_posts(session=s, account=account, posts=posts, observed_at=None)
        return result.to_score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=512)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sc-bench-"))
    os.environ.update(SOCIALCARE_DATA_DIR=str(work), DATABASE_URL=f"sqlite:///{work}/b.db")
    for name in ("REDIS_URL", "BROKER_URL"):
        os.environ.pop(name, None)

    from socialcare import config
    from socialcare.flows import InlineRunner, score_posts
    from socialcare.migrations import upgrade
    from socialcare.scoring.scorer import get_scorer

    settings = config.get_settings()
    upgrade(settings)
    posts = _posts(args.posts * 2)
    texts = [p.text for p in posts[: args.posts]]
    size = settings.score_batch_size
    scorer = get_scorer(settings)
    scorer.score(texts[:size])  # warm up

    start = time.perf_counter()
    for i in range(0, len(texts), size):
        scorer.score(texts[i : i + size])
    bare = len(texts) / (time.perf_counter() - start)

    ids = _store(settings, posts[: args.posts])
    start = time.perf_counter()
    runner = InlineRunner(settings)
    for i in range(0, len(ids), size):
        score_posts(ids[i : i + size], enqueue=runner, settings=settings)
    flow = len(ids) / (time.perf_counter() - start)

    celery_ids = _store(settings, posts[args.posts :])
    env = dict(os.environ, PYTHONPATH=str(REPO), LOG_LEVEL="WARNING")
    worker = start_worker(env)
    try:
        from sqlalchemy import func, select

        from socialcare.db import session_scope
        from socialcare.posts.models import Post
        from workers.tasks import enqueue

        # Warm the worker (its model loads once) on one batch before the clock starts.
        enqueue("score_posts", celery_ids[:size])
        rest = celery_ids[size:]

        def scored(ids: list[int]) -> int:
            with session_scope(settings) as s:
                return int(
                    s.execute(
                        select(func.count()).where(Post.id.in_(ids), Post.stage != "ingested")
                    ).scalar_one()
                )

        while scored(celery_ids[:size]) < size:
            time.sleep(0.2)
        start = time.perf_counter()
        for i in range(0, len(rest), size):
            enqueue("score_posts", rest[i : i + size])
        while scored(rest) < len(rest):
            time.sleep(0.1)
        via_celery = len(rest) / (time.perf_counter() - start)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    print(
        json.dumps(
            {
                "posts": args.posts,
                "batch": size,
                "bare_posts_per_s": round(bare, 1),
                "flow_posts_per_s": round(flow, 1),
                "celery_posts_per_s": round(via_celery, 1),
                "flow_over_bare": round(flow / bare, 3),
                "celery_over_bare": round(via_celery / bare, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
