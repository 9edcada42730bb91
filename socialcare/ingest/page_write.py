"""A poll's page written in the transaction that moves the account's cursors: the posts stored,
the page's requests and billed reads counted, the rate windows kept, on the condition that the
cursors are still those the poll left (else nothing of the page may be committed)."""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import (
    Date,
    DateTime,
    Integer,
    Select,
    String,
    Text,
    bindparam,
    cast,
    column,
    func,
    literal_column,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.db import UTCDateTime, changed_rows, on_postgresql
from socialcare.ingest import service
from socialcare.ingest.models import RateLimitState, ReadUsage
from socialcare.posts.models import Account
from socialcare.posts.service import IngestResult, encoded_rows, ingest_posts, pg_insert_posts_sql
from socialcare.sources.base import FetchResult, RateWindow


def write_page(
    session: Session,
    account: Account,
    page: FetchResult,
    expected: dict[str, Any],
    settings: Settings,
    now: datetime,
) -> IngestResult | None:
    """Store a page with the cursors it leaves, if the account's cursors are still expected;
    None when something else moved them (the caller rolls back). On PostgreSQL the page is one
    statement (PageWrite), and posts read again are billed after it."""
    day = now.date()
    ids = list(dict.fromkeys(p.external_id for p in page.posts))
    if not on_postgresql(session):
        if not _move_cursors(session, account, expected, page.cursors):
            return None
        stored = ingest_posts(
            session=session,
            account=account,
            posts=page.posts,
            observed_at=page.observed_at,
            grace_seconds=settings.step_grace_seconds,
            read_on=day,
        )
        service.count_reads(
            session=session,
            account_id=account.id,
            platform=account.platform,
            external_ids=ids,
            requests=page.requests_made,
            day=day,
            read_on_insert=stored.inserted,
        )
        service.store_rate_windows(
            session=session, account_id=account.id, windows=page.rate_windows, now=now
        )
        return stored
    write = PageWrite(
        account_id=account.id,
        expected=expected,
        cursors=page.cursors,
        day=day,
        requests=page.requests_made,
        reads=len(ids),
        windows=page.rate_windows,
        now=now,
    )
    stored = ingest_posts(
        session=session,
        account=account,
        posts=page.posts,
        observed_at=page.observed_at,
        grace_seconds=settings.step_grace_seconds,
        read_on=day,
        insert=write,
    )
    if not write.moved:
        return None
    inserted = set(stored.inserted)
    again = service.read_again(
        session=session,
        platform=account.platform,
        external_ids=[i for i in ids if i not in inserted],
        day=day,
    )
    if again:
        service.add_usage(
            session=session, account_id=account.id, day=day, requests=0, reads=0, billed=again
        )
    return stored


def _move_cursors(
    session: Session, account: Account, expected: dict[str, Any], cursors: dict[str, Any]
) -> bool:
    """Set the account's cursors if they are still expected; False when something else moved
    them (on SQLite the transaction holds the database's write lock from its BEGIN)."""
    params = {"account_id": account.id, "expected": expected, "cursors": cursors}
    return changed_rows(session.execute(service.cursor_move(), params)) == 1


class PageWrite:
    """A page of a poll written to PostgreSQL by one statement, in one round trip: the account's
    cursors moved by compare-and-set (the row stays locked to the end of the transaction), the
    posts inserted (as ingest_posts's insert), the page's requests, reads and the reads billed
    for its new posts added to the account's day, and the rate windows kept. moved tells, after
    the call, whether the cursors were still those expected (if not, nothing of the page may be
    committed). Posts seen before are billed by read_again, once their ids are known."""

    def __init__(
        self,
        *,
        account_id: int,
        expected: dict[str, Any],
        cursors: dict[str, Any],
        day: date,
        requests: int,
        reads: int,
        windows: dict[str, RateWindow],
        now: datetime,
    ) -> None:
        self.params: dict[str, Any] = {
            "account_id": account_id,
            "expected": expected,
            "cursors": cursors,
            "day": day,
            "requests": requests,
            "reads": reads,
            "windows": orjson.dumps(
                [
                    {
                        "endpoint": endpoint,
                        "limit": w.limit,
                        "remaining": w.remaining,
                        "reset_at": w.reset_at,
                    }
                    for endpoint, w in sorted(windows.items())
                ]
            ).decode(),
            "now": now,
        }
        self.moved = False

    def __call__(self, session: Session, rows: list[dict[str, Any]]) -> list[Any]:
        _, payload = encoded_rows(rows)
        result = session.execute(_page_write(), {**self.params, "rows": payload}).all()
        self.moved = bool(result[0].moved)
        return [row for row in result if row.id is not None]


@functools.cache
def _page_write() -> Select[Any]:
    """The page write as one PostgreSQL statement, of the pieces the single statements use:
    cursor_move, the posts' insert, usage_upsert and window_upsert, each a CTE."""
    account_id = bindparam("account_id", type_=Integer)
    moved = service.cursor_move().returning(literal_column("1").label("one")).cte("moved")
    inserted = (
        text(pg_insert_posts_sql())
        .columns(column("id", Integer), column("platform", String), column("external_id", String))
        .cte("inserted")
    )
    usage = service.usage_upsert(
        postgresql.insert(ReadUsage).from_select(
            ["account_id", "day", "requests", "reads", "billed"],
            select(
                account_id,
                bindparam("day", type_=Date),
                bindparam("requests", type_=Integer),
                bindparam("reads", type_=Integer),
                func.count(),
            ).select_from(inserted),
        )
    ).cte("usage")
    window = (
        func.jsonb_to_recordset(cast(bindparam("windows", type_=Text), JSONB))
        .table_valued(
            column("endpoint", String),
            column("limit", Integer),
            column("remaining", Integer),
            column("reset_at", DateTime(timezone=True)),
        )
        .render_derived(name="w", with_types=True)
    )
    windows = service.window_upsert(
        postgresql.insert(RateLimitState).from_select(
            ["account_id", "endpoint", "limit", "remaining", "reset_at", "updated_at"],
            select(
                account_id,
                window.c.endpoint,
                window.c.limit,
                window.c.remaining,
                window.c.reset_at,
                bindparam("now", type_=UTCDateTime()),
            ),
        )
    ).cte("windows")
    one = select(literal_column("1").label("one")).subquery("one")
    return (
        select(
            select(func.count()).select_from(moved).scalar_subquery().label("moved"),
            inserted.c.id,
            inserted.c.platform,
            inserted.c.external_id,
        )
        .select_from(one.outerjoin(inserted, true()))
        .add_cte(usage, windows)
    )
