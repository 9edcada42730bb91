"""Polling an account: one poller at a time, each page committed with its cursors, the budget
and the read cap respected, incidents recorded, the next poll paced to the flow of mentions."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from celery.utils.time import get_exponential_backoff_interval
from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from socialcare.cases.service import raise_for_visibility
from socialcare.config import Settings, get_settings
from socialcare.db import get_engine, session_scope, utcnow
from socialcare.errors import RateLimited, SourceError
from socialcare.flows.base import Enqueue, chunks, later
from socialcare.leases import hold_lease, release_lease
from socialcare.posts.models import Account
from socialcare.posts.service import account_ref, ingest_posts, store_cursors
from socialcare.scoring.service import refresh_urgency
from socialcare.sources import ingestion
from socialcare.sources.base import ACCOUNT_WINDOW, FetchResult, coalesce_empty, fetch_pages
from socialcare.sources.read_ahead import ReadAhead
from socialcare.sources.registry import get_source

log = logging.getLogger(__name__)
# Incidents that a successful poll ends.
CLEARED_BY_A_POLL = ("missed_polls", "auth_failed")


@dataclass(frozen=True)
class PollResult:
    """What one poll did: the posts it stored; skipped says why it made no request at all (the
    account is paused or failing, another worker holds its lease, its rate window or the read
    cap is spent), error why it stopped (the platform's failure)."""

    stored: int = 0
    skipped: str | None = None
    error: str | None = None


def lease_name(account_id: int) -> str:
    return f"poll:{account_id}"


def next_interval(
    current: float, found: int, *, page_size: int, bounds: tuple[float, float], floor: float
) -> float:
    """The next poll interval: the shortest while a poll fills pages, halved while mentions
    come, half as long again when quiet; never below the budget's floor."""
    low, high = bounds
    if found >= page_size:
        wanted = low
    elif found:
        wanted = current / 2
    else:
        wanted = current * 1.5
    return max(floor, min(high, max(low, wanted)))


def _alert(
    session: Session,
    account: Account,
    kind: str,
    severity: str,
    detail: str,
    now: datetime,
    data: dict | None = None,
    once: bool = False,
) -> None:
    incident = ingestion.open_incident(
        session=session,
        account_id=account.id,
        kind=kind,
        severity=severity,
        detail=detail,
        now=now,
        data=data,
        once=once,
    )
    if incident is not None and severity != "info":
        level = logging.ERROR if severity == "error" else logging.WARNING
        log.log(
            level,
            "ingestion alert for account %s (%s): %s",
            account.id,
            kind,
            detail,
            extra={"account_id": account.id, "incident": kind},
        )


def _read_cap_allows(session: Session, account: Account, settings: Settings, now: datetime) -> bool:
    """False when the month's billed reads reached X_MONTHLY_READ_CAP (polling pauses until the
    month ends, with an alert); at 80% a warning once a month."""
    cap = settings.x_monthly_read_cap
    if not cap or account.platform != "x":
        return True
    month = ingestion.month_start(now.date())
    billed = ingestion.billed_since(session=session, account_id=None, since=month)
    data = {"billed": billed, "cap": cap, "month": month.isoformat()}
    if billed >= cap:
        resume = ingestion.next_month_start(now)
        _alert(
            session,
            account,
            "read_cap_reached",
            "error",
            f"{billed} of {cap} billed reads this month: polling paused until {resume:%Y-%m-%d}",
            now,
            data,
            once=True,
        )
        account.next_poll_at = resume
        return False
    if billed >= cap * ingestion.CAP_WARNING:
        _alert(
            session,
            account,
            "read_cap_warning",
            "warning",
            f"{billed} of {cap} billed reads this month ({billed / cap:.0%})",
            now,
            data,
            once=True,
        )
    return True


def _hold(
    session: Session, account_id: int, holder: str, settings: Settings, now: datetime
) -> bool:
    """Take or renew the account's poll lease for holder."""
    return hold_lease(
        session=session,
        name=lease_name(account_id),
        holder=holder,
        seconds=settings.poll_lease_seconds,
        now=now,
    )


def _begin(account_id: int, holder: str, settings: Settings) -> tuple | str:
    """What the poll needs, or why it makes no request."""
    now = utcnow()
    with session_scope(settings) as session:
        account = session.get(Account, account_id)
        if account is None:
            return f"no account {account_id}"
        if not account.active:
            return f"account {account_id} is paused"
        if account.failing:
            return f"account {account_id} is failing: {account.last_error or 'see its incidents'}"
        if not _hold(session, account_id, holder, settings, now):
            log.info("account %s is being polled by another worker", account_id)
            return f"another worker holds the {lease_name(account_id)} lease"
        if not _read_cap_allows(session, account, settings, now):
            release_lease(session=session, name=lease_name(account_id), holder=holder, now=now)
            return f"the monthly read cap is reached: polling paused until {account.next_poll_at}"
        windows = ingestion.rate_windows(session=session, account_id=account_id)
        shared = windows.get(ACCOUNT_WINDOW)
        if shared is not None and shared.spent(now):
            # The last answer said no request is left: wait for the reset instead of spending a
            # request on a 429 (the window is the platform's, shared by every worker).
            log.info("account %s: rate window spent until %s", account_id, shared.reset_at)
            account.next_poll_at = shared.reset_at
            release_lease(session=session, name=lease_name(account_id), holder=holder, now=now)
            return f"the rate window is spent until {shared.reset_at}"
        interval = account.poll_interval_seconds or settings.poll_interval_seconds
        return account_ref(account), dict(account.cursors), account.source, windows, interval


def _fail(account_id: int, holder: str, exc: SourceError, settings: Settings) -> None:
    now = utcnow()
    with session_scope(settings) as session:
        account = session.get(Account, account_id)
        assert account is not None
        release_lease(session=session, name=lease_name(account_id), holder=holder, now=now)
        account.last_error = str(exc)[:1000]
        account.poll_attempts += 1
        if exc.permanent:
            account.failing = True
            _alert(
                session,
                account,
                "auth_failed" if exc.status in (401, 403) else "failing",
                "error",
                f"polling stopped: {exc}",
                now,
                {"status": exc.status},
                once=True,
            )
        elif isinstance(exc, RateLimited) and exc.retry_after:
            account.next_poll_at = exc.retry_after  # the window's reset: no worker waits on it
        else:
            # Celery's own exponential backoff with full jitter: failing accounts do not retry
            # in step. The poll is picked up again by poll_due once it is due.
            low, high = settings.poll_interval_bounds
            wait = get_exponential_backoff_interval(
                factor=max(1, int(low)),
                retries=account.poll_attempts - 1,
                maximum=max(int(high), 900),
                full_jitter=True,
            )
            account.next_poll_at = now + timedelta(seconds=max(1, wait))


def _store_page(
    session: Session,
    account: Account,
    page: FetchResult,
    expected: dict[str, Any],
    settings: Settings,
    enqueue: Enqueue,
) -> int | None:
    """Store a page with the cursors it leaves, if the account's cursors are still expected;
    returns the posts stored, or None when something else moved the cursors (the caller rolls
    back). On PostgreSQL the page is one statement (PageWrite); posts read again are billed
    after it."""
    now = utcnow()
    day = now.date()
    ids = list(dict.fromkeys(p.external_id for p in page.posts))
    write: ingestion.PageWrite | None = None
    if session.get_bind().dialect.name == "postgresql":
        write = ingestion.PageWrite(
            account_id=account.id,
            expected=expected,
            cursors=page.cursors,
            day=day,
            requests=page.requests_made,
            reads=len(ids),
            windows=page.rate_windows,
            now=now,
        )
    elif not _move_cursors(session, account, expected, page.cursors):
        return None
    stored = ingest_posts(
        session=session,
        account=account,
        posts=page.posts,
        observed_at=page.observed_at,
        grace_seconds=settings.step_grace_seconds,
        read_on=day,
        insert=write,
    )
    if write is None:
        ingestion.count_reads(
            session=session,
            account_id=account.id,
            platform=account.platform,
            external_ids=ids,
            requests=page.requests_made,
            day=day,
            read_on_insert=stored.inserted,
        )
        ingestion.store_rate_windows(
            session=session, account_id=account.id, windows=page.rate_windows, now=now
        )
    else:
        if not write.moved:
            return None
        inserted = set(stored.inserted)
        again = ingestion.read_again(
            session=session,
            platform=account.platform,
            external_ids=[i for i in ids if i not in inserted],
            day=day,
        )
        if again:
            ingestion.add_usage(
                session=session, account_id=account.id, day=day, requests=0, reads=0, billed=again
            )
    set_committed_value(account, "cursors", dict(page.cursors))
    for note in page.notes:
        _alert(session, account, note.kind, note.severity, note.detail, now, note.data)
    if stored.refreshed:
        risen = refresh_urgency(session=session, post_ids=stored.refreshed, settings=settings)
        raise_for_visibility(session=session, risen=risen, settings=settings)
    for chunk in chunks(stored.to_score, settings.score_batch_size):
        later(session, enqueue, "score_posts", chunk)
    if stored.to_link:
        later(session, enqueue, "route_posts", stored.to_link)
    return len(stored.to_score) + len(stored.to_link)


def poll_account(account_id: int, *, enqueue: Enqueue, settings: Settings | None = None) -> int:
    """Fetch an account's new posts page by page, each page committed with the cursors it
    leaves; returns the posts stored. Another worker's poll of the account makes this a no-op."""
    return poll(account_id, enqueue=enqueue, settings=settings).stored


def poll(account_id: int, *, enqueue: Enqueue, settings: Settings | None = None) -> PollResult:
    """poll_account, saying what happened: the posts stored, why no request was made, or the
    error that stopped the poll."""
    settings = settings or get_settings()
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    leased = time.monotonic()  # the lease runs from no earlier than this
    begun = _begin(account_id, holder, settings)
    if isinstance(begun, str):
        return PollResult(skipped=begun)
    ref, cursors, source_name, windows, interval = begun
    source = get_source(source_name, settings)
    remember = getattr(source, "remember_rate_windows", None)
    if remember is not None:
        remember(account_id, windows)
    total = found = 0
    # The next page is fetched while this one is stored (one page ahead, no more); a page that
    # found nothing is stored with the one after it.
    pages = ReadAhead(coalesce_empty(fetch_pages(source, ref, cursors)), name=f"poll-{account_id}")
    # One connection and one session for the whole poll, one transaction per page: no pool
    # checkout (and its liveness ping) per page, and the account is loaded once.
    with get_engine(settings).connect() as conn, Session(conn, expire_on_commit=False) as session:
        try:
            account = session.get_one(Account, account_id)
            session.commit()
            for page in pages:
                now = utcnow()
                # An unexpired lease is nobody else's to take: it is renewed once a third of its
                # term has passed, not on every page (two statements a page saved).
                if time.monotonic() - leased >= settings.poll_lease_seconds / 3:
                    leased = time.monotonic()
                    if not _hold(session, account_id, holder, settings, now):
                        session.commit()
                        log.warning("poll of account %s lost its lease; stopping", account_id)
                        return PollResult(total, error="another worker took over the poll")
                # The cursors move with the page, on the condition that they are still those
                # the poll left: the account's row stays locked until the page commits.
                stored = _store_page(session, account, page, cursors, settings, enqueue)
                if stored is None:
                    session.rollback()
                    log.warning("account %s cursors moved under its poll; stopping", account_id)
                    return PollResult(total, error="another poll moved the cursors")
                cursors = dict(page.cursors)
                total += stored
                found += sum(not p.is_brand for p in page.posts)
                if page.final:
                    store_cursors(session=session, account=account, cursors=page.cursors)
                    _schedule(account, page, found, interval, settings, now)
                    ingestion.resolve_incidents(
                        session=session, account_id=account_id, kinds=CLEARED_BY_A_POLL, now=now
                    )
                    release_lease(
                        session=session, name=lease_name(account_id), holder=holder, now=now
                    )
                session.commit()
        except SourceError as exc:
            session.rollback()
            log.warning("poll of account %s failed: %s", account_id, exc)
            _fail(account_id, holder, exc, settings)
            return PollResult(total, error=str(exc))
        except BaseException:
            session.rollback()
            raise
        finally:
            pages.close()
    return PollResult(total)


def _move_cursors(
    session: Session, account: Account, expected: dict[str, Any], cursors: dict[str, Any]
) -> bool:
    """SQLite: set the account's cursors if they are still expected (the transaction holds the
    database's write lock from its BEGIN); False when something else moved them."""
    table = cast(Table, Account.__table__)
    stored = session.execute(select(table.c.cursors).where(table.c.id == account.id))
    if stored.scalar_one() != expected:
        return False
    session.execute(update(table).where(table.c.id == account.id).values(cursors=cursors))
    return True


def _schedule(
    account: Account,
    page: FetchResult,
    found: int,
    interval: float,
    settings: Settings,
    now: datetime,
) -> None:
    if page.min_poll_in is None:  # the source paces itself (a replay's virtual clock)
        wait = page.next_poll_in or settings.poll_interval_seconds
    else:
        wait = next_interval(
            interval,
            found,
            page_size=settings.x_page_size,
            bounds=settings.poll_interval_bounds,
            floor=page.min_poll_in,
        )
        account.poll_interval_seconds = wait
    account.next_poll_at = now + timedelta(seconds=wait)


def flag_late_accounts(*, session: Session, settings: Settings, now: datetime) -> int:
    """Alert once for each polled account that missed two poll intervals (a stopped poller
    fails silently otherwise); the account's next successful poll resolves it."""
    late = ingestion.late_accounts(
        session=session,
        now=now,
        default_interval=settings.poll_interval_seconds,
        grace=settings.step_grace_seconds,
    )
    for account, last in late:
        _alert(
            session,
            account,
            "missed_polls",
            "error",
            f"no successful poll since {last:%Y-%m-%d %H:%M:%S} UTC (two poll intervals missed)",
            now,
            {"last_success": last.isoformat()},
            once=True,
        )
    return len(late)
