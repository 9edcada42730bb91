"""Polling an account: one poller at a time, each page committed with its cursors, the budget
and the read cap respected, incidents recorded, the next poll paced to the flow of mentions.

The policy (lease, read cap, rate window, backoff, pacing) is socialcare.ingest.policy's and the
page write socialcare.ingest.page_write's; this flow runs them in order, a transaction a page."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from socialcare.cases.service import raise_for_visibility
from socialcare.config import Settings, get_settings
from socialcare.db import get_engine, session_scope, utcnow
from socialcare.errors import SourceError
from socialcare.flows.base import Enqueue, chunks, later
from socialcare.ingest import policy
from socialcare.ingest.page_write import write_page
from socialcare.posts.models import Account
from socialcare.scoring.service import refresh_urgency
from socialcare.sources.base import FetchResult, coalesce_empty, fetch_pages
from socialcare.sources.read_ahead import ReadAhead
from socialcare.sources.registry import get_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollResult:
    """What one poll did: the posts it stored; skipped says why it made no request at all (the
    account is paused or failing, another worker holds its lease, its rate window or the read
    cap is spent), error why it stopped (the platform's failure)."""

    stored: int = 0
    skipped: str | None = None
    error: str | None = None


def _begin(account_id: int, holder: str, settings: Settings) -> policy.PollStart | str:
    """What the poll needs, or why it makes no request (committed: the lease, or the pause)."""
    with session_scope(settings) as session:
        return policy.start_poll(session, account_id, holder, settings, utcnow())


def _fail(account_id: int, holder: str, exc: SourceError, settings: Settings) -> None:
    with session_scope(settings) as session:
        policy.record_failure(session, account_id, holder, exc, settings, utcnow())


def _store_page(
    session: Session,
    account: Account,
    page: FetchResult,
    expected: dict[str, Any],
    settings: Settings,
    enqueue: Enqueue,
) -> int | None:
    """Store a page with the cursors it leaves (None when something else moved the cursors:
    the caller rolls back), record its notes, and hand its posts to the next steps."""
    now = utcnow()
    stored = write_page(session, account, page, expected, settings, now)
    if stored is None:
        return None
    set_committed_value(account, "cursors", dict(page.cursors))
    for note in page.notes:
        policy.alert(session, account, note.kind, note.severity, note.detail, now, note.data)
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
    cursors = begun.cursors
    source = get_source(begun.source, settings)
    remember = getattr(source, "remember_rate_windows", None)
    if remember is not None:
        remember(account_id, begun.windows)
    total = found = 0
    # The next page is fetched while this one is stored (one page ahead, no more); a page that
    # found nothing is stored with the one after it.
    pages = ReadAhead(
        coalesce_empty(fetch_pages(source, begun.account, cursors)), name=f"poll-{account_id}"
    )
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
                    if not policy.hold(session, account_id, holder, settings, now):
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
                    policy.finish_poll(
                        session,
                        account,
                        page,
                        found=found,
                        interval=begun.interval,
                        holder=holder,
                        settings=settings,
                        now=now,
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


def flag_late_accounts(*, session: Session, settings: Settings, now: datetime) -> int:
    """Alert once for each polled account that missed two poll intervals."""
    return policy.flag_late_accounts(session=session, settings=settings, now=now)
