"""What the end-to-end suites share: worker and beat processes over a real broker and database."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from socialcare import config
from socialcare.cases.models import Case
from socialcare.db import session_scope
from socialcare.posts.models import Post, Score
from tests.conftest import REDIS_TEST_URL, REPO, SHARED_DATA, migrated

HEAD = SHARED_DATA / "twcs" / "twcs_head_1000.csv"


def head_of(path: Path, rows: int, into: Path) -> Path:
    """The first `rows` rows of a CSV file (and its header), written to `into`."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        kept = [next(reader) for _ in range(rows + 1)]
    with into.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(kept)
    return into


DEADLINE = 300.0


def wait_for(
    check: Callable[[], bool],
    what: str,
    timeout: float = DEADLINE,
    detail: Callable[[], str] | None = None,
) -> float:
    """Seconds until check() held; past timeout, fail naming what (and detail(), e.g. logs)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(1.0)
    extra = f"\n{detail()}" if detail is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{extra}")


class Deployment:
    """Worker and beat processes with an environment, stopped gracefully at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> None:
        log = (self.logs / f"{args[0]}-{len(self.procs)}.log").open("wb")
        cmd = [sys.executable, "-m", "celery", "-A", "workers.app", *args, "--loglevel=INFO"]
        self.procs.append(
            subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        )

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def log_tail(self, full: bool = False) -> str:
        texts = (f.read_text(errors="replace") for f in self.logs.glob("*.log"))
        return "\n".join(t if full else t[-3000:] for t in texts)


def _environment(tmp_path: Path, database_url: str, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("X_", "REDIS", "BROKER"))}
    env.update(
        DATABASE_URL=database_url,
        SOCIALCARE_DATA_DIR=str(tmp_path / "var"),
        REPLAY_CLOCK="original",
        REPLAY_SPEEDUP="100000",
        REPLAY_MAX_GAP_SECONDS="60",
        SWEEP_INTERVAL_SECONDS="5",
        POLL_INTERVAL_SECONDS="1",
        STEP_GRACE_SECONDS="30",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=str(REPO),
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


RABBIT_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _purge_amqp(url: str) -> None:
    from kombu import Connection

    with Connection(url) as conn:
        conn.ensure_connection(max_retries=3)
        # Delete the queues (and what is in them); the worker declares them afresh.
        channel = conn.channel()
        for queue in ("socialcare", "socialcare.control", "socialcare.score"):
            channel.queue_delete(queue)


@pytest.fixture(params=["redis+postgres", "rabbitmq+postgres", "embedded"])
def deployment(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Deployment, config.Settings]]:
    if request.param == "redis+postgres":
        database_url = request.getfixturevalue("pg_url")
        redis_url = f"{REDIS_TEST_URL}/{random.randint(1, 15)}"
        redis.Redis.from_url(redis_url).flushdb()
    elif request.param == "rabbitmq+postgres":
        database_url = request.getfixturevalue("pg_url")
        redis_url = None
        _purge_amqp(RABBIT_URL)
    else:
        database_url = f"sqlite:///{tmp_path / 'socialcare.db'}"
        redis_url = None
    env = _environment(tmp_path, database_url, redis_url)
    if request.param == "rabbitmq+postgres":
        env["BROKER_URL"] = RABBIT_URL
    for key in ("DATABASE_URL", "SOCIALCARE_DATA_DIR", "REPLAY_SPEEDUP"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("REDIS_URL", raising=False)
    config.get_settings.cache_clear()
    settings = config.get_settings()
    engine = migrated(settings)
    dep = Deployment(env, tmp_path)
    dep.start("worker", "--concurrency=2", "--without-gossip", "--without-mingle")
    dep.start("beat")
    try:
        yield dep, settings
    finally:
        dep.stop()
        engine.dispose()
        config.get_settings.cache_clear()


def stage_counts(settings: config.Settings) -> dict[str, int]:
    with session_scope(settings) as s:

        def count(stmt) -> int:  # type: ignore[no-untyped-def]
            return int(s.execute(stmt).scalar_one())

        return {
            "posts": count(select(func.count()).select_from(Post)),
            "customer": count(
                select(func.count()).select_from(Post).where(Post.is_brand.is_(False))
            ),
            "routed_customer": count(
                select(func.count())
                .select_from(Post)
                .where(Post.is_brand.is_(False), Post.stage == "routed")
            ),
            "scores": count(select(func.count()).select_from(Score)),
            "cases": count(select(func.count()).select_from(Case)),
            "waiting": count(
                select(func.count()).select_from(Post).where(Post.stage.in_(("ingested", "scored")))
            ),
        }
