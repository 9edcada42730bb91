"""The reports pages' query (period, time zone, account, end day): parsed once, then one digest.

The page, its charts, the CSV and the JSON all take a `Report` from `report_dep`, so every one
of them validates the same way and calls build_digest through `load_report` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.metrics.digest import PERIODS as PERIODS  # the reports page reads it here
from socialcare.metrics.digest import build_digest, period_bounds
from socialcare.metrics.digest_model import Digest
from socialcare.metrics.localtime import zone
from socialcare.posts.models import Account
from socialcare.web.deps import SessionDep, request_now

EARLIEST = date(2000, 1, 1)  # older end days are typos; this also keeps date maths in range
_ECHO_LIMIT = 64
DigestBuilder = Callable[..., Digest]


class BadReportQuery(ValueError):
    """A query value the reports cannot use; its message is shown to the person who sent it."""


@dataclass(frozen=True)
class ReportQuery:
    """A validated reports query, resolved to one period and the moment the digest is taken."""

    period: str  # "day" | "week"
    tz: str  # IANA zone name
    account: str | None  # the account as asked for (handle or platform:handle), None for all
    account_id: int | None
    end: date | None  # the end day as asked for; None: the last complete period
    first_day: date  # the period's first local day
    last_day: date  # the period's last local day (inclusive)
    as_of: datetime  # the "now" handed to build_digest (see resolve)
    previous_end: date | None  # the previous period's last day, for the navigation link
    next_end: date | None  # the next period's last day, when that period is over

    def params(self, *, end: date | None = None) -> dict[str, str]:
        """Query parameters that ask for this report again (or for the period ending on end)."""
        out = {"period": self.period, "tz": self.tz}
        if self.account is not None:
            out["account"] = self.account
        day = end or (None if self.end is None else self.last_day)
        if day is not None:
            out["end"] = day.isoformat()
        return out

    def query_string(self, *, end: date | None = None) -> str:
        """params() URL-encoded (values are untrusted: the template escapes the result too)."""
        return urlencode(self.params(end=end))


@dataclass(frozen=True)
class Report:
    """A resolved query and its digest."""

    query: ReportQuery
    digest: Digest


def _echo(value: str) -> str:
    """A value quoted for an error message, cut short."""
    return repr(value if len(value) <= _ECHO_LIMIT else value[:_ECHO_LIMIT] + "…")


def _local_midnight(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone(tz)).astimezone(UTC)


def _days(period: str) -> int:
    return 1 if period == "day" else 7


def _find_account(session: Session, asked: str) -> Account:
    handle = asked.strip().lstrip("@")
    platform = None
    if ":" in handle:
        platform, handle = (part.strip() for part in handle.split(":", 1))
        handle = handle.lstrip("@")
    stmt = select(Account).where(func.lower(Account.handle) == handle.lower())
    if platform:
        stmt = stmt.where(Account.platform == platform)
    found = list(session.scalars(stmt.order_by(Account.id).limit(2)))
    if not found:
        raise BadReportQuery(f"unknown account {_echo(asked)}")
    if len(found) > 1:
        raise BadReportQuery(
            f"account {_echo(asked)} is on several platforms: write platform:handle"
        )
    return found[0]


def _parse_end(end: str, *, today: date, tz: str) -> date:
    try:
        day = date.fromisoformat(end.strip())
    except ValueError:
        raise BadReportQuery(f"end must be a date as YYYY-MM-DD, got {_echo(end)}") from None
    if day < EARLIEST:
        raise BadReportQuery(f"end must be {EARLIEST.isoformat()} or later")
    if day >= today:
        raise BadReportQuery(f"end must be a day before today ({today.isoformat()} in {tz})")
    return day


def resolve(
    session: Session,
    *,
    now: datetime,
    period: str = "day",
    tz: str = "UTC",
    account: str | None = None,
    end: str | None = None,
) -> ReportQuery:
    """The query checked and resolved; BadReportQuery with a message naming what is wrong.

    end is the last day the report covers; a week report covers the last complete ISO week
    ending on or before it (so any day of a week after it shows the week before). Without end,
    the last complete period before now. The digest is taken as late as still names the same
    period (now, or the end of the following period for an older one), so answers that came in
    after the period closed count, as they do in the digest sent the next morning.
    """
    period = period.strip()
    if period not in PERIODS:
        raise BadReportQuery(f"period must be one of {', '.join(PERIODS)}, got {_echo(period)}")
    tz = tz.strip() or "UTC"
    try:
        local_zone = zone(tz)
    except ValueError:
        raise BadReportQuery(f"unknown time zone {_echo(tz)}") from None
    today = now.astimezone(local_zone).date()
    account = (account or "").strip() or None
    found = None if account is None else _find_account(session, account)
    end_day = None if not (end or "").strip() else _parse_end(end or "", today=today, tz=tz)
    anchor = now if end_day is None else _local_midnight(end_day + timedelta(days=1), tz)
    start, stop = period_bounds(period, now=anchor, tz=tz)
    first_day = start.astimezone(local_zone).date()
    after = stop.astimezone(local_zone).date()  # the first day after the period
    step = timedelta(days=_days(period))
    as_of = min(now, _local_midnight(after + step, tz) - timedelta(microseconds=1))
    following_last = after + step - timedelta(days=1)
    return ReportQuery(
        period=period,
        tz=tz,
        account=account,
        account_id=None if found is None else found.id,
        end=end_day,
        first_day=first_day,
        last_day=after - timedelta(days=1),
        as_of=as_of,
        previous_end=first_day - timedelta(days=1) if first_day > EARLIEST else None,
        next_end=following_last if following_last < today else None,
    )


def load_report(
    *, session: Session, settings: Settings, query: ReportQuery, builder: DigestBuilder
) -> Report:
    """The digest for a resolved query: the one place the reports call build_digest."""
    digest = builder(
        session=session,
        settings=settings,
        period=query.period,
        now=query.as_of,
        tz=query.tz,
        account_id=query.account_id,
        report_url=None,
    )
    return Report(query=query, digest=digest)


def get_digest_builder() -> DigestBuilder:
    """build_digest; a dependency so that tests can hand the pages a digest of their own."""
    return build_digest


def report_dep(
    request: Request,
    session: SessionDep,
    builder: Annotated[DigestBuilder, Depends(get_digest_builder)],
    period: Annotated[str, Query(description="day or week")] = "day",
    tz: Annotated[str, Query(description="IANA time zone the period is cut in")] = "UTC",
    account: Annotated[
        str | None, Query(description="brand account handle (or platform:handle); all if unset")
    ] = None,
    end: Annotated[
        str | None, Query(description="last day covered, YYYY-MM-DD; the last complete period")
    ] = None,
) -> Report:
    """The request's report: its query parsed once, its digest built once."""
    query = resolve(
        session, now=request_now(request), period=period, tz=tz, account=account, end=end
    )
    settings: Settings = request.app.state.settings
    return load_report(session=session, settings=settings, query=query, builder=builder)


ReportDep = Annotated[Report, Depends(report_dep)]
