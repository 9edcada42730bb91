"""Two beat processes, as during a deploy: each periodic run is sent once, and a standby takes
over within the lease when the leader is killed."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from socialcare import config
from socialcare.db import session_scope
from socialcare.leases import Lease
from tests.conftest import REDIS_TEST_URL, REPO, migrated

pytestmark = pytest.mark.slow
LEASE = 4.0
INTERVAL = 1.0


def _sweeps(r: redis.Redis, until: float, seen: list[float]) -> None:
    """Collect the arrival time of every sweep message beat publishes, until the deadline."""
    while time.monotonic() < until:
        item = r.blpop(["socialcare.control"], timeout=1)
        if item is None:
            continue
        message = json.loads(item[1])
        if message["headers"]["task"] == "socialcare.sweep":
            seen.append(time.monotonic())


def test_two_beats_send_each_run_once_and_a_standby_takes_over(pg_url, tmp_path, monkeypatch):
    broker = f"{REDIS_TEST_URL}/{random.randint(1, 15)}"
    r = redis.Redis.from_url(broker)
    r.flushdb()
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    config.get_settings.cache_clear()
    settings = config.get_settings()
    engine = migrated(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS", "BROKER", "X_"))}
    env.update(
        DATABASE_URL=pg_url,
        REDIS_URL=broker,
        SWEEP_INTERVAL_SECONDS=str(INTERVAL),
        POLL_INTERVAL_SECONDS="3600",
        BEAT_LEASE_SECONDS=str(LEASE),
        SOCIALCARE_DATA_DIR=str(tmp_path),
        PYTHONPATH=str(REPO),
    )
    beats = []
    for i in range(2):
        log = Path(tmp_path / f"beat{i}.log").open("wb")  # noqa: SIM115 - the child writes it
        beats.append(
            subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "--loglevel=INFO"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        time.sleep(6)  # both beats up
        r.delete("socialcare.control")
        seen: list[float] = []
        start = time.monotonic()
        _sweeps(r, start + 20, seen)
        both = len(seen)
        # One sender at INTERVAL gives about 20; two independent beats would give about 40.
        assert 16 <= both <= 22, f"{both} sweeps in 20 s with two beats"

        with session_scope(settings) as s:
            holder = s.execute(select(Lease.holder).where(Lease.name == "beat")).scalar_one()
        leader = next(b for b in beats if holder.endswith(f":{b.pid}"))
        killed_at = time.monotonic()
        leader.send_signal(signal.SIGKILL)
        leader.wait()
        after: list[float] = []
        _sweeps(r, killed_at + 20, after)
        assert after, "no beat took over"
        around = [t for t in seen if t > killed_at - 3] + after
        takeover = max(b - a for a, b in itertools.pairwise(around))
        assert takeover <= LEASE + INTERVAL + 3, f"standby took over after {takeover:.1f}s"
        steady = [t for t in after if t > after[0] + 1]
        assert len(steady) >= 10
        gaps = [b - a for a, b in itertools.pairwise(steady)]
        assert min(gaps) > INTERVAL * 0.4, "the same run was sent twice"
        print(f"{both} sweeps in 20 s with two beats; longest gap across the kill {takeover:.1f}s")
    finally:
        for b in beats:
            if b.poll() is None:
                b.send_signal(signal.SIGTERM)
        for b in beats:
            try:
                b.wait(timeout=20)
            except subprocess.TimeoutExpired:
                b.kill()
        engine.dispose()
        config.get_settings.cache_clear()
