"""SIGTERM during a long task, as a platform restart sends it: the worker is gone within the
platform's 30 seconds, the task's transaction is all or nothing, and a task that could not
finish goes back to the broker and is done by the next worker, with no sweep to rescue it."""

from __future__ import annotations

import random
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from socialcare import config
from socialcare.db import session_scope
from socialcare.posts.models import Post, Score
from socialcare.posts.service import ensure_account, ingest_posts
from socialcare.sources.twcs import load_posts
from tests.conftest import REDIS_TEST_URL, SHARED_DATA, migrated
from tests.e2e.conftest import Deployment, _environment, wait_for

pytestmark = pytest.mark.slow

POSTS = 1600  # one task scoring these takes about 40 s here: well over the 20 s a stopping
# worker allows
PLATFORM_GRACE = 30.0  # SIGTERM, then SIGKILL this much later


def _scored(settings: config.Settings) -> int:
    with session_scope(settings) as s:
        return int(s.execute(select(func.count()).select_from(Score)).scalar_one())


def test_a_long_task_interrupted_by_sigterm_is_handed_back_and_done_once(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = f"{REDIS_TEST_URL}/{random.randint(1, 15)}"
    redis.Redis.from_url(broker).flushdb()
    env = _environment(tmp_path, pg_url, broker)
    env["REMAP_SIGTERM"] = "SIGQUIT"  # as the Procfile runs the worker
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("REDIS_URL", broker)
    config.get_settings.cache_clear()
    settings = config.get_settings()
    engine = migrated(settings)
    customers = [p for p in load_posts([SHARED_DATA / "twcs" / "twcs_head_1000.csv"])]
    customers = [p for p in customers if not p.is_brand]
    posts = [
        replace(customers[i % len(customers)], external_id=f"long{i}", brand_handle=None)
        for i in range(POSTS)
    ]
    with session_scope(settings) as s:
        account = ensure_account(s, platform="twcs", handle="LongBrand", source="replay")
        ids = ingest_posts(session=s, account=account, posts=posts, observed_at=None).to_score
    assert len(ids) == POSTS

    dep = Deployment(env, tmp_path)
    try:
        dep.start("worker", "--concurrency=1", "--without-gossip", "--without-mingle")
        first = dep.procs[0]
        wait_for(lambda: "ready" in dep.log_tail(), "the worker to start", 120, dep.log_tail)
        from workers.app import create_app

        # A Celery app on this test's settings (the process may hold others from earlier tests).
        celery = create_app(settings)
        celery.send_task("socialcare.score_posts", args=[ids])
        celery.close()
        wait_for(
            lambda: "socialcare.score_posts" in dep.log_tail() and "received" in dep.log_tail(),
            "the worker to take the task",
            60,
            dep.log_tail,
        )
        time.sleep(3.0)  # well into the task
        stopped_at = time.monotonic()
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=PLATFORM_GRACE + 10)
        took = time.monotonic() - stopped_at
        assert took < PLATFORM_GRACE, f"the worker took {took:.1f}s to stop\n{dep.log_tail()}"
        done_by_first = _scored(settings)
        assert done_by_first in (0, POSTS), "a task's work is committed whole or not at all"

        # No beat runs, so no sweep: only the broker can bring the task back.
        dep.start("worker", "--concurrency=1", "--without-gossip", "--without-mingle")
        finished = wait_for(
            lambda: _scored(settings) == POSTS, "the handed-back task to be done", 300, dep.log_tail
        )
        with session_scope(settings) as s:
            per_post = s.execute(
                select(Score.post_id, func.count()).group_by(Score.post_id).having(func.count() > 1)
            ).all()
            waiting = s.execute(
                select(func.count()).select_from(Post).where(Post.stage == "ingested")
            ).scalar_one()
        assert per_post == [] and waiting == 0
        print(
            f"\nSIGTERM to exit {took:.1f}s; scored by the stopping worker: {done_by_first}; "
            f"the rest {finished:.0f}s after a new worker started"
        )
    finally:
        dep.stop()
        engine.dispose()
        config.get_settings.cache_clear()
