"""Business hours: working days and hours in a time zone, public holidays from `holidays`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, and_, false

from socialcare.errors import ConfigError

if TYPE_CHECKING:
    from socialcare.config import Settings
    from socialcare.metrics.localtime import LocalTime

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(
    r"^\s*(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+"
    r"(?P<open>\d{1,2}):(?P<om>\d{2})-(?P<close>\d{1,2}):(?P<cm>\d{2})\s*$"
)


@dataclass(frozen=True)
class BusinessCalendar:
    """Open on weekdays (1 = Monday) from open_minute to close_minute local time, except on the
    public holidays of country (ISO code, optional subdivision: "GB-ENG", "US-NY")."""

    tz: str = "UTC"
    weekdays: tuple[int, ...] = (1, 2, 3, 4, 5)
    open_minute: int = 9 * 60
    close_minute: int = 17 * 60
    country: str = ""

    @classmethod
    def parse(cls, hours: str, tz: str, country: str) -> BusinessCalendar:
        """From BUSINESS_HOURS ("mon-fri 09:00-17:00"), BUSINESS_TZ and BUSINESS_HOLIDAYS."""
        match = _HOURS.match(hours.lower())
        if not match or match["first"] not in DAYS or (match["last"] or "mon") not in DAYS:
            raise ConfigError(f"BUSINESS_HOURS={hours!r}: expected like 'mon-fri 09:00-17:00'")
        first = DAYS.index(match["first"]) + 1
        last = DAYS.index(match["last"]) + 1 if match["last"] else first
        opens = int(match["open"]) * 60 + int(match["om"])
        closes = int(match["close"]) * 60 + int(match["cm"])
        if not (first <= last and 0 <= opens < closes <= 24 * 60):
            raise ConfigError(f"BUSINESS_HOURS={hours!r}: days or hours out of order")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"BUSINESS_TZ={tz!r}: not an IANA time zone") from None
        calendar = cls(tz, tuple(range(first, last + 1)), opens, closes, country.strip().upper())
        calendar.holidays(2026, 2026)  # an unknown country fails at start-up, not in a digest
        return calendar

    @classmethod
    def from_settings(cls, settings: Settings) -> BusinessCalendar:
        return cls.parse(settings.business_hours, settings.business_tz, settings.business_holidays)

    @classmethod
    def for_team(cls, name: str, calendar: dict[str, Any], settings: Settings) -> BusinessCalendar:
        """A team's own calendar; what it leaves out comes from the BUSINESS_* settings."""
        try:
            return cls.parse(
                str(calendar.get("hours") or settings.business_hours),
                str(calendar.get("tz") or settings.business_tz),
                str(calendar.get("holidays") or settings.business_holidays),
            )
        except ConfigError as exc:
            raise ConfigError(f"team {name!r} calendar: {exc}") from None

    def describe(self) -> str:
        """Like 'mon-fri 09:00-17:00 Europe/London, holidays GB-ENG'."""
        first, last = DAYS[self.weekdays[0] - 1], DAYS[self.weekdays[-1] - 1]
        days = first if first == last else f"{first}-{last}"

        def clock(minute: int) -> str:
            return f"{minute // 60:02d}:{minute % 60:02d}"

        hours = f"{clock(self.open_minute)}-{clock(self.close_minute)}"
        return f"{days} {hours} {self.tz}, holidays {self.country or 'none'}"

    def holidays(self, first_year: int, last_year: int) -> dict[str, str]:
        """'YYYY-MM-DD' -> holiday name, for the years given."""
        if not self.country:
            return {}
        import holidays

        code, _, subdiv = self.country.partition("-")
        try:
            found = holidays.country_holidays(
                code, subdiv=subdiv or None, years=range(first_year, last_year + 1)
            )
        except NotImplementedError as exc:
            raise ConfigError(f"BUSINESS_HOLIDAYS={self.country!r}: {exc}") from None
        return {day.isoformat(): str(name) for day, name in found.items()}

    def is_open(self, moment: datetime) -> bool:
        """The same rule in Python, for one aware moment."""
        local = moment.astimezone(ZoneInfo(self.tz))
        minute = local.hour * 60 + local.minute
        return (
            local.isoweekday() in self.weekdays
            and self.open_minute <= minute < self.close_minute
            and local.date().isoformat() not in self.holidays(local.year, local.year)
        )

    def contains(self, local: LocalTime, start: datetime, end: datetime) -> ColumnElement[bool]:
        """SQL: the local time (in this calendar's zone) falls in business hours."""
        if not self.weekdays:
            return false()
        span = [(start - timedelta(days=1)).year, (end + timedelta(days=1)).year]
        days_off = list(self.holidays(min(span), max(span)))
        minute: Any = local.minute_of_day()
        clauses = [
            local.isoweekday().in_(self.weekdays),
            minute >= self.open_minute,
            minute < self.close_minute,
        ]
        if days_off:
            clauses.append(local.day().not_in(days_off))
        return and_(*clauses)
