"""Ingestion bookkeeping: billed reads per day, the monthly read cap, rate-limit snapshots and
ingestion incidents (what operators see when a poll cannot be trusted)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, Table, Update, bindparam, func, select, update
from sqlalchemy.orm import Session

from socialcare.db import changed_rows, dialect_insert, same_json
from socialcare.ingest.models import IngestionIncident, RateLimitState, ReadUsage
from socialcare.posts.models import Account, Post
from socialcare.sources.base import RateWindow

CAP_WARNING = 0.8


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month_start(now: datetime) -> datetime:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + timedelta(days=32)).replace(day=1)


def count_reads(
    *,
    session: Session,
    account_id: int,
    platform: str,
    external_ids: Iterable[str],
    requests: int,
    day: date,
    read_on_insert: Iterable[str] = (),
) -> int:
    """Count one page's reads on the account's day; returns the billed ones: the posts not read
    yet this UTC day (the platform bills a post read twice in one day once). read_on_insert:
    posts of the page just inserted with read_on set to day (billed, with nothing to update)."""
    ids = list(dict.fromkeys(external_ids))
    fresh = set(read_on_insert).intersection(ids)
    billed = len(fresh) + read_again(
        session=session, platform=platform, external_ids=[i for i in ids if i not in fresh], day=day
    )
    add_usage(
        session=session,
        account_id=account_id,
        day=day,
        requests=requests,
        reads=len(ids),
        billed=billed,
    )
    return billed


def read_again(*, session: Session, platform: str, external_ids: list[str], day: date) -> int:
    """Mark stored posts as read on day; returns those not read that day before (billed)."""
    if not external_ids:
        return 0
    return changed_rows(
        session.execute(
            update(Post)
            .where(
                Post.platform == platform,
                Post.external_id.in_(external_ids),
                (Post.read_on.is_(None)) | (Post.read_on != day),
            )
            .values(read_on=day)
            .execution_options(synchronize_session=False)
        )
    )


def add_usage(
    *, session: Session, account_id: int, day: date, requests: int, reads: int, billed: int
) -> None:
    """Add requests, reads and billed reads to the account's day."""
    session.execute(
        _add_usage(session.get_bind().dialect.name),
        {
            "account_id": account_id,
            "day": day,
            "requests": requests,
            "reads": reads,
            "billed": billed,
        },
    )


@functools.cache
def _add_usage(dialect: str) -> Any:
    """Add a page's requests and reads to the account's day (built once: every page runs it)."""
    stmt = dialect_insert(dialect)(ReadUsage.__table__).values(
        account_id=bindparam("account_id"),
        day=bindparam("day"),
        requests=bindparam("requests"),
        reads=bindparam("reads"),
        billed=bindparam("billed"),
    )
    return usage_upsert(stmt)


def usage_upsert(stmt: Any) -> Any:
    """An insert into read_usage (of values, or from a select) that adds to the account's day
    when it has a row already."""
    table = ReadUsage.__table__
    return stmt.on_conflict_do_update(
        index_elements=["account_id", "day"],
        set_={
            "requests": table.c.requests + stmt.excluded.requests,
            "reads": table.c.reads + stmt.excluded.reads,
            "billed": table.c.billed + stmt.excluded.billed,
        },
    )


def billed_since(*, session: Session, account_id: int | None, since: date) -> int:
    """Billed reads from since (a UTC day) on, for one account or (None) all of them."""
    query = select(func.coalesce(func.sum(ReadUsage.billed), 0)).where(ReadUsage.day >= since)
    if account_id is not None:
        query = query.where(ReadUsage.account_id == account_id)
    return int(session.execute(query).scalar_one())


def projected_month(billed_this_month: int, now: datetime) -> float:
    """This month's billed reads extrapolated to the whole month at the rate so far."""
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elapsed = max((now - start).total_seconds(), 3600.0)
    return billed_this_month * (next_month_start(now) - start).total_seconds() / elapsed


def store_rate_windows(
    *, session: Session, account_id: int, windows: dict[str, RateWindow], now: datetime
) -> None:
    """Keep the last rate window seen per endpoint (for status, and budgets without Redis)."""
    rows = [
        {
            "account_id": account_id,
            "endpoint": endpoint,
            "limit": w.limit,
            "remaining": w.remaining,
            "reset_at": w.reset_at,
            "updated_at": now,
        }
        for endpoint, w in sorted(windows.items())
    ]
    if rows:
        session.execute(_keep_window(session.get_bind().dialect.name), rows)


@functools.cache
def _keep_window(dialect: str) -> Any:
    return window_upsert(dialect_insert(dialect)(RateLimitState.__table__))


def window_upsert(stmt: Any) -> Any:
    """An insert into rate_limits (of values, or from a select) that replaces the endpoint's
    window when the account has one already."""
    return stmt.on_conflict_do_update(
        index_elements=["account_id", "endpoint"],
        set_={
            "limit": stmt.excluded.limit,
            "remaining": stmt.excluded.remaining,
            "reset_at": stmt.excluded.reset_at,
            "updated_at": stmt.excluded.updated_at,
        },
    )


@functools.cache
def cursor_move() -> Update:
    """Set the account's cursors (:cursors) if they are still :expected (a compare-and-set:
    the row it changes stays locked to the end of the transaction)."""
    table = cast(Table, Account.__table__)
    return (
        update(table)
        .where(
            table.c.id == bindparam("account_id", type_=Integer),
            same_json(table.c.cursors, bindparam("expected", type_=table.c.cursors.type)),
        )
        .values(cursors=bindparam("cursors", type_=table.c.cursors.type))
    )


def rate_windows(*, session: Session, account_id: int) -> dict[str, RateWindow]:
    rows = session.execute(
        select(RateLimitState).where(RateLimitState.account_id == account_id)
    ).scalars()
    return {r.endpoint: RateWindow(r.limit, r.remaining, r.reset_at) for r in rows}


def open_incident(
    *,
    session: Session,
    account_id: int,
    kind: str,
    severity: str,
    detail: str,
    now: datetime,
    data: dict[str, Any] | None = None,
    once: bool = False,
) -> IngestionIncident | None:
    """Record an incident; with once, not while one of that kind is still open (None then)."""
    if once and open_incidents(session=session, account_id=account_id, kind=kind):
        return None
    incident = IngestionIncident(
        account_id=account_id,
        kind=kind,
        severity=severity,
        detail=detail[:2000],
        data=data or {},
        opened_at=now,
        resolved_at=now if severity == "info" else None,
    )
    session.add(incident)
    session.flush()
    return incident


def open_incidents(
    *, session: Session, account_id: int | None = None, kind: str | None = None
) -> list[IngestionIncident]:
    query = select(IngestionIncident).where(IngestionIncident.resolved_at.is_(None))
    if account_id is not None:
        query = query.where(IngestionIncident.account_id == account_id)
    if kind is not None:
        query = query.where(IngestionIncident.kind == kind)
    return list(session.execute(query.order_by(IngestionIncident.id)).scalars())


def resolve_incidents(
    *, session: Session, account_id: int, kinds: Iterable[str], now: datetime
) -> int:
    """Close the account's open incidents of these kinds (the condition has passed)."""
    return changed_rows(
        session.execute(
            update(IngestionIncident)
            .where(
                IngestionIncident.account_id == account_id,
                IngestionIncident.kind.in_(list(kinds)),
                IngestionIncident.resolved_at.is_(None),
            )
            .values(resolved_at=now)
            .execution_options(synchronize_session=False)
        )
    )


def late_accounts(
    *, session: Session, now: datetime, default_interval: float, grace: float
) -> list[tuple[Account, datetime]]:
    """Polled accounts whose last successful poll is older than two poll intervals (plus the
    grace a queued poll gets), with that time; failing accounts have their own incident."""
    late: list[tuple[Account, datetime]] = []
    accounts = session.execute(
        select(Account).where(Account.active.is_(True), Account.failing.is_(False))
    ).scalars()
    for account in accounts:
        if not (account.config or {}).get("polled"):
            continue
        interval = account.poll_interval_seconds or default_interval
        last = account.last_polled_at or account.created_at
        if now - last > timedelta(seconds=2 * interval + grace):
            late.append((account, last))
    return late
