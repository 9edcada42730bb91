"""What a poll of an account may do and when the next one runs: one poller at a time (a lease),
the monthly read cap, the platform's rate window, backoff after a failure, and the next poll
paced to the flow of mentions. The flow (socialcare.flows.polling) calls these in order."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery.utils.time import get_exponential_backoff_interval
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.errors import RateLimited, SourceError
from socialcare.ingest import service
from socialcare.leases import hold_lease, release_lease
from socialcare.posts.models import Account
from socialcare.posts.service import account_ref, store_cursors
from socialcare.sources.base import ACCOUNT_WINDOW, AccountRef, FetchResult, RateWindow

# The poll's log lines keep the logger they were always written to, so filters on it still match.
log = logging.getLogger("socialcare.flows.polling")
# Incidents that a successful poll ends.
CLEARED_BY_A_POLL = ("missed_polls", "auth_failed")


@dataclass(frozen=True)
class PollStart:
    """What a poll that may go ahead needs: the account as the source sees it, the cursors it
    starts from, the source's name, the rate windows stored for it, and its poll interval."""

    account: AccountRef
    cursors: dict[str, Any]
    source: str
    windows: dict[str, RateWindow]
    interval: float


def lease_name(account_id: int) -> str:
    return f"poll:{account_id}"


def hold(session: Session, account_id: int, holder: str, settings: Settings, now: datetime) -> bool:
    """Take or renew the account's poll lease for holder."""
    return hold_lease(
        session=session,
        name=lease_name(account_id),
        holder=holder,
        seconds=settings.poll_lease_seconds,
        now=now,
    )


def release(session: Session, account_id: int, holder: str, now: datetime) -> None:
    release_lease(session=session, name=lease_name(account_id), holder=holder, now=now)


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


def alert(
    session: Session,
    account: Account,
    kind: str,
    severity: str,
    detail: str,
    now: datetime,
    data: dict[str, Any] | None = None,
    once: bool = False,
) -> None:
    """Record an ingestion incident for the account, logged unless it is only information."""
    incident = service.open_incident(
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


def read_cap_allows(session: Session, account: Account, settings: Settings, now: datetime) -> bool:
    """False when the month's billed reads reached X_MONTHLY_READ_CAP (polling pauses until the
    month ends, with an alert); at 80% a warning once a month."""
    cap = settings.x_monthly_read_cap
    if not cap or account.platform != "x":
        return True
    month = service.month_start(now.date())
    billed = service.billed_since(session=session, account_id=None, since=month)
    data = {"billed": billed, "cap": cap, "month": month.isoformat()}
    if billed >= cap:
        resume = service.next_month_start(now)
        alert(
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
    if billed >= cap * service.CAP_WARNING:
        alert(
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


def start_poll(
    session: Session, account_id: int, holder: str, settings: Settings, now: datetime
) -> PollStart | str:
    """Take the account's poll lease for holder and say what the poll needs, or why it makes no
    request: the account is missing, paused or failing, another worker holds the lease, the
    read cap is reached, or its rate window is spent (the lease is then given back)."""
    account = session.get(Account, account_id)
    if account is None:
        return f"no account {account_id}"
    if not account.active:
        return f"account {account_id} is paused"
    if account.failing:
        return f"account {account_id} is failing: {account.last_error or 'see its incidents'}"
    if not hold(session, account_id, holder, settings, now):
        log.info("account %s is being polled by another worker", account_id)
        return f"another worker holds the {lease_name(account_id)} lease"
    if not read_cap_allows(session, account, settings, now):
        release(session, account_id, holder, now)
        return f"the monthly read cap is reached: polling paused until {account.next_poll_at}"
    windows = service.rate_windows(session=session, account_id=account_id)
    shared = windows.get(ACCOUNT_WINDOW)
    if shared is not None and shared.spent(now):
        # The last answer said no request is left: wait for the reset instead of spending a
        # request on a 429 (the window is the platform's, shared by every worker).
        log.info("account %s: rate window spent until %s", account_id, shared.reset_at)
        account.next_poll_at = shared.reset_at
        release(session, account_id, holder, now)
        return f"the rate window is spent until {shared.reset_at}"
    return PollStart(
        account=account_ref(account),
        cursors=dict(account.cursors),
        source=account.source,
        windows=windows,
        interval=account.poll_interval_seconds or settings.poll_interval_seconds,
    )


def record_failure(
    session: Session,
    account_id: int,
    holder: str,
    exc: SourceError,
    settings: Settings,
    now: datetime,
) -> None:
    """A poll stopped by the platform: give the lease back, keep the error, and set the next
    poll (never, for a permanent failure, with an alert; the rate window's reset; or Celery's
    exponential backoff with full jitter, so failing accounts do not retry in step)."""
    account = session.get_one(Account, account_id)
    release(session, account_id, holder, now)
    account.last_error = str(exc)[:1000]
    account.poll_attempts += 1
    if exc.permanent:
        account.failing = True
        alert(
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
        # The poll is picked up again by poll_due once it is due.
        low, high = settings.poll_interval_bounds
        wait = get_exponential_backoff_interval(
            factor=max(1, int(low)),
            retries=account.poll_attempts - 1,
            maximum=max(int(high), 900),
            full_jitter=True,
        )
        account.next_poll_at = now + timedelta(seconds=max(1, wait))


def schedule_next(
    account: Account,
    page: FetchResult,
    found: int,
    interval: float,
    settings: Settings,
    now: datetime,
) -> None:
    """Set the account's next poll: as the source asks when it paces itself (a replay's virtual
    clock), else next_interval from the customer posts found, above the budget's floor."""
    if page.min_poll_in is None:
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


def finish_poll(
    session: Session,
    account: Account,
    page: FetchResult,
    *,
    found: int,
    interval: float,
    holder: str,
    settings: Settings,
    now: datetime,
) -> None:
    """A poll's last page stored: its cursors kept, the next poll set, the incidents a
    successful poll ends resolved, the lease given back."""
    store_cursors(session=session, account=account, cursors=page.cursors)
    schedule_next(account, page, found, interval, settings, now)
    service.resolve_incidents(
        session=session, account_id=account.id, kinds=CLEARED_BY_A_POLL, now=now
    )
    release(session, account.id, holder, now)


def flag_late_accounts(*, session: Session, settings: Settings, now: datetime) -> int:
    """Alert once for each polled account that missed two poll intervals (a stopped poller
    fails silently otherwise); the account's next successful poll resolves it."""
    late = service.late_accounts(
        session=session,
        now=now,
        default_interval=settings.poll_interval_seconds,
        grace=settings.step_grace_seconds,
    )
    for account, last in late:
        alert(
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
