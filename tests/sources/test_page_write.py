"""The page write's compare-and-set of an account's cursors, one statement on either database:
it moves cursors that are still those expected (whatever spacing the stored JSON has), and
refuses cursors something else moved."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from socialcare.db import session_scope
from socialcare.ingest.page_write import _move_cursors, _page_write
from socialcare.posts.models import Account
from socialcare.posts.service import ensure_account


def _account(settings, cursors_json: str) -> int:
    with session_scope(settings) as session:
        account_id = ensure_account(session, platform="x", handle="Acme", source="x").id
        session.execute(
            text("UPDATE accounts SET cursors = CAST(:c AS json) WHERE id = :id")
            if settings.sqlalchemy_url.startswith("postgresql")
            else text("UPDATE accounts SET cursors = :c WHERE id = :id"),
            {"c": cursors_json, "id": account_id},
        )
    return account_id


def test_cursors_still_expected_move_whatever_the_stored_spacing(settings, engine):
    account_id = _account(settings, '{ "mentions_since_id" :  "17",\n "user_id": "9" }')
    with session_scope(settings) as session:
        account = session.get_one(Account, account_id)
        expected = {"mentions_since_id": "17", "user_id": "9"}
        assert _move_cursors(session, account, expected, {"mentions_since_id": "30"})
    with session_scope(settings) as session:
        assert session.get_one(Account, account_id).cursors == {"mentions_since_id": "30"}


def test_cursors_moved_by_something_else_are_left_as_they_are(settings, engine):
    account_id = _account(settings, '{"mentions_since_id": "20"}')
    with session_scope(settings) as session:
        account = session.get_one(Account, account_id)
        moved = _move_cursors(
            session, account, {"mentions_since_id": "17"}, {"mentions_since_id": "30"}
        )
        assert not moved
    with session_scope(settings) as session:
        assert session.get_one(Account, account_id).cursors == {"mentions_since_id": "20"}


def test_the_postgresql_page_write_is_built_of_the_single_statements_pieces():
    sql = str(_page_write().compile(dialect=postgresql.psycopg.dialect()))
    # One compare-and-set, one posts insert, one usage upsert, one window upsert: no other SQL.
    assert sql.count("UPDATE accounts SET cursors") == 1
    assert "ON CONFLICT (account_id, day) DO UPDATE SET requests = (read_usage.requests" in sql
    assert 'ON CONFLICT (account_id, endpoint) DO UPDATE SET "limit" = excluded."limit"' in sql
    assert sql.count("INSERT INTO posts") == 1
