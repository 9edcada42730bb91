"""Readiness (/readyz): the database and the broker, each bounded to about a second."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker

from socialcare import config, db
from socialcare.config import Settings
from socialcare.models import Base
from socialcare.ops.health import readiness
from socialcare.people.service import create_token
from socialcare.web import create_app
from tests.conftest import REDIS_TEST_URL
from tests.factories import make_agent

CLOSED_REDIS = "redis://127.0.0.1:6390/0"
CLOSED_POSTGRES = "postgresql://postgres@127.0.0.1:5499/test"
MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeSettings]:
    """Settings from a few variables on top of a SQLite database and the embedded broker."""
    for name in ("DATABASE_URL", "REDIS_URL", "BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOCIALCARE_DATA_DIR", str(tmp_path / "var"))

    def make(**env: str) -> Settings:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        config.get_settings.cache_clear()
        settings = config.get_settings()
        (settings.broker_folder / "messages").mkdir(parents=True, exist_ok=True)
        return settings

    yield make
    config.get_settings.cache_clear()


def _readyz(
    settings: Settings, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], float, dict[str, str]]:
    with TestClient(create_app(settings)) as client:
        started = time.monotonic()
        response = client.get("/readyz", headers=headers)
        elapsed = time.monotonic() - started
    return response.status_code, response.json(), elapsed, dict(response.headers)


def test_ready_on_sqlite_with_the_embedded_broker(make_settings: MakeSettings) -> None:
    status, body, _, headers = _readyz(make_settings())
    assert status == 200
    assert body == {"database": "ok", "broker": "ok"}
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"


def test_missing_broker_folder_is_not_ready(make_settings: MakeSettings) -> None:
    settings = make_settings()
    (settings.broker_folder / "messages").rmdir()
    status, body, _, headers = _readyz(settings)
    assert status == 503
    assert body == {"database": "ok", "broker": "failed"}  # anonymous: no path, no error text
    assert headers["cache-control"] == "no-store"
    detail = readiness(settings)["broker"]
    assert detail.startswith("error: filesystem: FileNotFoundError")
    assert str(settings.broker_folder) in detail


def _token(settings: Settings, role: str) -> dict[str, str]:
    engine = db.get_engine(settings)
    Base.metadata.create_all(engine)
    with sessionmaker(engine)() as session:
        agent = make_agent(session, f"ops-{role}", role=role)
        secret, _ = create_token(session=session, agent=agent, name="probe", actor="tests")
        session.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_only_a_lead_or_an_admin_reads_why_a_check_failed(make_settings: MakeSettings) -> None:
    settings = make_settings()
    lead, agent = _token(settings, "lead"), _token(settings, "agent")
    (settings.broker_folder / "messages").rmdir()
    status, body, _, _ = _readyz(settings, lead)
    assert status == 503
    assert body["database"] == "ok"
    assert body["broker"].startswith("error: filesystem: FileNotFoundError")
    for headers in (agent, {"Authorization": "Bearer sc_not_a_token"}, None):
        status, body, _, _ = _readyz(settings, headers)
        assert (status, body) == (503, {"database": "ok", "broker": "failed"})


def test_probe_leaves_no_file_in_the_broker_folder(make_settings: MakeSettings) -> None:
    settings = make_settings()
    assert readiness(settings) == {"database": "ok", "broker": "ok"}
    assert list((settings.broker_folder / "messages").iterdir()) == []


def test_closed_redis_port_fails_fast(make_settings: MakeSettings) -> None:
    settings = make_settings(REDIS_URL=CLOSED_REDIS)
    status, body, elapsed, _ = _readyz(settings)
    assert status == 503
    assert elapsed < 2.0
    assert body == {"database": "ok", "broker": "failed"}
    detail = readiness(settings)["broker"]
    assert detail.startswith("error: redis: ") and "6390" in detail


@pytest.mark.redis
def test_real_redis_is_ready(make_settings: MakeSettings) -> None:
    status, body, _, _ = _readyz(make_settings(REDIS_URL=f"{REDIS_TEST_URL}/0"))
    assert status == 200
    assert body == {"database": "ok", "broker": "ok"}


def test_closed_amqp_port_fails_fast(make_settings: MakeSettings) -> None:
    settings = make_settings(BROKER_URL="amqp://guest:guest@127.0.0.1:5679//")
    started = time.monotonic()
    result = readiness(settings)
    assert time.monotonic() - started < 2.0
    assert result["database"] == "ok"
    assert result["broker"].startswith("error: amqp: ")
    assert "guest:guest" not in result["broker"]


def test_closed_postgres_port_fails_fast(make_settings: MakeSettings) -> None:
    status, body, elapsed, _ = _readyz(make_settings(DATABASE_URL=CLOSED_POSTGRES))
    assert status == 503
    assert elapsed < 2.0
    assert body == {"database": "failed", "broker": "ok"}


def test_hanging_database_is_cut_off(make_settings: MakeSettings) -> None:
    # A socket that accepts connections (in the kernel's backlog) but never says a word.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        settings = make_settings(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/test")
        started = time.monotonic()
        result = readiness(settings)
        elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 2.0
    assert result == {"database": "error: no answer within 1 s", "broker": "ok"}
