"""Scheduled digests end to end: two beat processes and a worker, each digest mailed once."""

from __future__ import annotations

import random
import time
from email import message_from_bytes

import pytest
import redis
from sqlalchemy import select

from socialcare import config
from socialcare.db import session_scope
from socialcare.metrics.models import DigestDelivery
from tests.conftest import REDIS_TEST_URL, migrated
from tests.e2e.conftest import Deployment, _environment, wait_for

pytestmark = pytest.mark.slow


def _rows(settings: config.Settings) -> list[tuple[str, str, str]]:
    with session_scope(settings) as s:
        return [
            (d.recipient, d.period, d.state)
            for d in s.execute(select(DigestDelivery).order_by(DigestDelivery.id)).scalars()
        ]


@pytest.mark.parametrize("stack", ["embedded+sqlite", "redis+postgres"])
def test_two_beats_and_a_worker_mail_each_due_digest_exactly_once(
    stack, tmp_path, monkeypatch, smtp_server, request
):
    server = smtp_server()
    if stack == "redis+postgres":
        broker = f"{REDIS_TEST_URL}/{random.randint(1, 15)}"
        redis.Redis.from_url(broker).flushdb()
        env = _environment(tmp_path, request.getfixturevalue("pg_url"), broker)
    else:
        env = _environment(tmp_path, f"sqlite:///{tmp_path / 'socialcare.db'}", None)
    env.update(
        SMTP_URL=server.url(),
        DIGEST_EMAIL_FROM="digests@example.com",
        DIGEST_RECIPIENTS=(
            "email:lead@example.com@Pacific/Auckland,email:ops@example.com@America/New_York"
        ),
        DIGEST_PERIODS="day,week",
        DIGEST_INTERVAL_SECONDS="1",
        SWEEP_INTERVAL_SECONDS="1",
        # A short grace: the sweep re-enqueues sends still in flight, as a slow broker would.
        STEP_GRACE_SECONDS="2",
        BEAT_LEASE_SECONDS="4",
        POLL_INTERVAL_SECONDS="3600",
    )
    for key in ("DATABASE_URL", "SOCIALCARE_DATA_DIR"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("BROKER_URL", raising=False)
    config.get_settings.cache_clear()
    settings = config.get_settings()
    engine = migrated(settings)
    dep = Deployment(env, tmp_path)
    try:
        dep.start("worker", "--concurrency=2", "--without-gossip", "--without-mingle")
        dep.start("beat")
        dep.start("beat")

        def all_sent() -> bool:
            rows = _rows(settings)
            return len(rows) >= 2 and all(state == "sent" for _, _, state in rows)

        wait_for(all_sent, "every scheduled digest sent", timeout=45, detail=dep.log_tail)
        time.sleep(4)  # beats and sweeps keep running: nothing may be mailed a second time
        assert dep.alive(), dep.log_tail()
        rows = _rows(settings)
        # Each recipient's last day, and its last week when it is Monday where it lives.
        assert {(r, p) for r, p, _ in rows} >= {
            ("email:lead@example.com", "day"),
            ("email:ops@example.com", "day"),
        }
        mails = [message_from_bytes(m) for m in server.handler.messages]
        received = sorted((m["To"], "weekly" in m["Subject"]) for m in mails)
        expected = sorted((r.split(":", 1)[1], p == "week") for r, p, _ in rows)
        assert received == expected, dep.log_tail()
        assert len({m["Message-ID"] for m in mails}) == len(mails)
    finally:
        dep.stop()
        engine.dispose()
        config.get_settings.cache_clear()
