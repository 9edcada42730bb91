"""Brokers and databases come and go: Redis flushed and restarted, then PostgreSQL restarted,
in the middle of a replay. Every post still ends scored and routed, and nothing is duplicated.

These restart the machine's own services with the commands from its documentation, so the
test waits for each to answer again before it goes on.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import select, text

from socialcare.cases.models import Case
from socialcare.db import session_scope
from socialcare.setup import ensure_replay_feed
from tests.e2e.conftest import HEAD, stage_counts, wait_for
from tests.flows.test_import import expected_first_responses

pytestmark = pytest.mark.slow

REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def _pg_cluster() -> str:
    return sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]


def _restart_redis(url: str) -> float:
    r = redis.Redis.from_url(url)
    r.flushall()
    start = time.monotonic()
    with contextlib.suppress(redis.ConnectionError):
        r.shutdown(nosave=True)  # the server closes the connection as it goes down
    time.sleep(1)
    subprocess.run(REDIS_START, check=True, capture_output=True)
    wait_for(lambda: _answers(lambda: redis.Redis.from_url(url).ping()), "redis", 30)
    return time.monotonic() - start


def _restart_postgres(settings) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", _pg_cluster(), "main", "restart"],
        check=True,
        capture_output=True,
    )

    def ping() -> bool:
        with session_scope(settings) as s:
            s.execute(text("SELECT 1"))
        return True

    wait_for(lambda: _answers(ping), "postgres", 60)
    return time.monotonic() - start


def _answers(check) -> bool:  # type: ignore[no-untyped-def]
    try:
        return bool(check())
    except Exception:
        return False


@pytest.mark.parametrize("deployment", ["redis+postgres"], indirect=True)
def test_work_completes_after_redis_is_flushed_and_postgres_restarted(deployment):
    dep, settings = deployment
    with session_scope(settings) as s:
        ensure_replay_feed(session=s, files=[HEAD], speedup=100000)

    def some_progress() -> bool:
        return stage_counts(settings)["cases"] > 20

    wait_for(some_progress, "the first cases", 180, detail=dep.log_tail)
    redis_down = _restart_redis(dep.env["REDIS_URL"])
    wait_for(
        lambda: _answers(lambda: stage_counts(settings)["cases"] > 60),
        "more cases after redis came back",
        180,
        detail=dep.log_tail,
    )
    pg_down = _restart_postgres(settings)
    recovered_from = time.monotonic()

    def done() -> bool:
        assert dep.alive(), dep.log_tail()
        try:
            c = stage_counts(settings)
        except Exception:
            return False
        return c["posts"] == 1000 and c["waiting"] == 0

    took = wait_for(done, "all work to complete after the outages", 300, detail=dep.log_tail)
    counts = stage_counts(settings)
    assert counts["routed_customer"] == counts["customer"] == counts["scores"]
    with session_scope(settings) as s:
        expected = expected_first_responses(s)
        for case in s.execute(select(Case)).scalars():
            got = case.first_response_at
            seconds = (got - case.opened_at).total_seconds() if got else None
            assert seconds == expected[case.id], f"case {case.id}"
    print(
        f"redis flushed and back in {redis_down:.1f}s, postgres restarted in {pg_down:.1f}s; "
        f"all work complete {took:.1f}s after postgres returned "
        f"({time.monotonic() - recovered_from:.1f}s)"
    )
