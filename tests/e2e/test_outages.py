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
from socialcare.flows.seed import ensure_replay_feed
from tests.e2e.conftest import HEAD, head_of, stage_counts, wait_for
from tests.flows.test_import import expected_first_responses

pytestmark = pytest.mark.slow
ROWS = 500  # rows of the TWCS file replayed: enough for work to be in flight at each outage

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
    """Flush, then drop the pub/sub clients and shut down in one write (the server runs both
    back to back): each worker hears of it first on its mailbox's pub/sub connection, with its
    consumer's BRPOP still waiting, the order that once made kombu's teardown stop a worker."""
    r = redis.Redis.from_url(url)
    r.flushall()
    start = time.monotonic()
    pipe = r.pipeline(transaction=False)
    pipe.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    pipe.execute_command("SHUTDOWN", "NOSAVE")
    with contextlib.suppress(redis.ConnectionError):
        pipe.execute()  # the server closes the connection as it goes down
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


def _assert_every_post_done_and_first_responses_right(settings) -> None:  # type: ignore[no-untyped-def]
    """Every customer post scored and routed once; each case's first response is the one the
    CSV's brand replies give."""
    counts = stage_counts(settings)
    assert counts["routed_customer"] == counts["customer"] == counts["scores"]
    with session_scope(settings) as s:
        expected = expected_first_responses(s)
        for case in s.execute(select(Case)).scalars():
            got = case.first_response_at
            seconds = (got - case.opened_at).total_seconds() if got else None
            assert seconds == expected[case.id], f"case {case.id}"


def _replayed(tmp_path: Path) -> Path:
    return head_of(HEAD, ROWS, tmp_path / "twcs_head.csv")


def _answers(check) -> bool:  # type: ignore[no-untyped-def]
    try:
        return bool(check())
    except Exception:
        return False


@pytest.mark.parametrize("deployment", ["redis+postgres"], indirect=True)
def test_work_completes_after_redis_is_flushed_and_postgres_restarted(deployment, tmp_path):
    dep, settings = deployment
    with session_scope(settings) as s:
        ensure_replay_feed(session=s, files=[_replayed(tmp_path)], speedup=100000)

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
        return c["posts"] == ROWS and c["waiting"] == 0

    took = wait_for(done, "all work to complete after the outages", 300, detail=dep.log_tail)
    _assert_every_post_done_and_first_responses_right(settings)
    print(
        f"redis flushed and back in {redis_down:.1f}s, postgres restarted in {pg_down:.1f}s; "
        f"all work complete {took:.1f}s after postgres returned "
        f"({time.monotonic() - recovered_from:.1f}s)"
    )


def _reset_connections(settings) -> int:  # type: ignore[no-untyped-def]
    """Cut every other connection to the test database, mid-transaction or not, as a network
    blip or a failover does; the number cut."""
    with session_scope(settings) as s:
        return int(
            s.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )


@pytest.mark.parametrize("deployment", ["redis+postgres"], indirect=True)
def test_work_completes_when_database_connections_are_reset_mid_run(deployment, tmp_path):
    from fastapi.testclient import TestClient

    from socialcare.web import create_app
    from tests.web.signin import bearer

    dep, settings = deployment
    # The web app as deployed beside these workers: the same database and broker.
    client = TestClient(create_app(settings.model_copy(update={"redis_url": dep.env["REDIS_URL"]})))
    with session_scope(settings) as s:
        client.headers.update(bearer(s, "watcher", "agent"))
    assert client.get("/api/queue").status_code == 200  # the web app holds a pooled connection
    with session_scope(settings) as s:
        ensure_replay_feed(session=s, files=[_replayed(tmp_path)], speedup=100000)
    wait_for(lambda: stage_counts(settings)["cases"] > 20, "the first cases", 180, dep.log_tail)
    cut = 0
    for _ in range(6):
        cut += _reset_connections(settings)
        time.sleep(3.0)
    assert cut >= 6, "the workers held connections to cut"

    def done() -> bool:
        assert dep.alive(), dep.log_tail()
        c = stage_counts(settings)
        return c["posts"] == ROWS and c["waiting"] == 0

    took = wait_for(done, "all work to complete after the resets", 300, dep.log_tail)
    # The web app's pooled connection was cut too: its next requests reconnect by themselves.
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert client.get("/api/queue").status_code == 200
    _assert_every_post_done_and_first_responses_right(settings)
    print(f"\n{cut} connections cut in 6 resets; all work complete {took:.1f}s after the last")
