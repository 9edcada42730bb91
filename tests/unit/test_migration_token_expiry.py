"""Migration 0010 on both databases: tokens made before it get an expiry from the upgrade on
(not from their creation), new ones need one, and the downgrade gives the old table back."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy import column, inspect, select, table, text
from sqlalchemy.exc import IntegrityError

from socialcare.db import UTCDateTime, utcnow
from socialcare.migrations import alembic_config, upgrade
from socialcare.models import Base
from tests.conftest import migrated


def test_tokens_made_before_expiry_existed_get_ninety_days_from_the_upgrade(settings):
    engine = migrated(settings)
    command.downgrade(alembic_config(settings), "0009")
    columns = {c["name"] for c in inspect(engine).get_columns("api_tokens")}
    assert "expires_at" not in columns
    old = utcnow() - timedelta(days=400)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO agents (handle, display_name, role, active, failed_logins, "
                "created_at) VALUES ('ann', 'Ann', 'agent', true, 0, :at)"
            ),
            {"at": old},
        )
        conn.execute(
            text(
                "INSERT INTO api_tokens (agent_id, name, token_hash, prefix, created_at) "
                "SELECT id, 'old script', 'h1', 'sc_abc', :at FROM agents"
            ),
            {"at": old},
        )
    before = utcnow()
    upgrade(settings, "0010")
    after = utcnow()
    tokens = table("api_tokens", column("expires_at", UTCDateTime()))
    with engine.connect() as conn:
        expires = conn.execute(select(tokens.c.expires_at)).scalar_one()
    assert before + timedelta(days=90) <= expires <= after + timedelta(days=90)
    with engine.begin() as conn:  # from now on a token cannot be made without an expiry
        try:
            conn.execute(
                text(
                    "INSERT INTO api_tokens (agent_id, name, token_hash, prefix, created_at) "
                    "SELECT id, 'new', 'h2', 'sc_def', :at FROM agents"
                ),
                {"at": utcnow()},
            )
            refused = False
        except IntegrityError:
            refused = True
    assert refused
    command.downgrade(alembic_config(settings), "0009")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM api_tokens")).scalars().all() == ["old script"]
    upgrade(settings)
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
