"""Alembic migrations build exactly the models' schema, on SQLite and PostgreSQL, idempotently."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from socialcare.migrations import upgrade
from socialcare.models import Base
from tests.conftest import migrated


def test_upgrade_builds_the_models_schema_and_running_it_again_changes_nothing(settings):
    engine = migrated(settings)
    upgrade(settings)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    tables = set(inspect(engine).get_table_names())
    assert {
        "accounts",
        "posts",
        "scores",
        "cases",
        "replies",
        "events",
        "teams",
        "agents",
    } <= tables
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
