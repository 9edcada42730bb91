"""Shared fixtures: real databases (SQLite file and PostgreSQL), settings, sessions."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from socialcare import config, db
from socialcare.models import Base

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SOCIALCARE_SHARED_DATA", REPO.parent / "shared" / "data"))
PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    name = f"sc_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    db._engine_for.cache_clear()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that uses it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def settings(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> config.Settings:
    """Settings pointing at the test database, installed as the process's settings."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SOCIALCARE_DATA_DIR", str(tmp_path / "var"))
    for name in ("REDIS_URL", "BROKER_URL", "X_BEARER_TOKEN", "X_API_KEY", "X_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    config.get_settings.cache_clear()
    s = config.get_settings()
    yield s
    config.get_settings.cache_clear()


@pytest.fixture
def engine(settings: config.Settings) -> Iterator[Engine]:
    eng = db.get_engine(settings)
    Base.metadata.drop_all(eng)
    Base.metadata.create_all(eng)
    yield eng
    Base.metadata.drop_all(eng)
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    s = sessionmaker(engine, expire_on_commit=False)()
    yield s
    s.rollback()
    s.close()


def migrated(settings: config.Settings) -> Engine:
    """The settings' database emptied and brought to the latest schema by the migrations."""
    from socialcare.migrations import upgrade

    eng = db.get_engine(settings)
    Base.metadata.drop_all(eng)
    with eng.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    upgrade(settings)
    return eng
