"""An account's usual posting rate per hour of the week, learned from its own history (pure).

Each of the 168 hours of the week keeps an exponentially weighted mean of the posts counted in
that hour on past weeks. Hours are folded in as they end; an hour with no posts counts as zero.
Until an hour of the week has been seen a few times its estimate leans on the account's mean
over all hours, so a new account is not judged on one week.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

HOURS_PER_WEEK = 168
ALPHA = 0.3  # weight of the newest week in an hour-of-week's mean
FULL_TRUST = 3  # observations of an hour-of-week before its own mean is used alone
# Epoch hour 0 (1970-01-01 00:00 UTC) was a Thursday; shift so bin 0 is Monday 00:00 UTC.
_MONDAY_SHIFT = 72


def epoch_hour(when: datetime) -> int:
    """Whole hours since the epoch (UTC)."""
    return math.floor(when.astimezone(UTC).timestamp() / 3600)


def hour_of_week(hour: int) -> int:
    """0 = Monday 00:00-01:00 UTC ... 167 = Sunday 23:00-24:00 UTC."""
    return (hour + _MONDAY_SHIFT) % HOURS_PER_WEEK


@dataclass
class Baseline:
    """Posts per hour, per hour of the week; `hour`/`count` is the hour being counted now."""

    rates: list[float] = field(default_factory=lambda: [0.0] * HOURS_PER_WEEK)
    seen: list[int] = field(default_factory=lambda: [0] * HOURS_PER_WEEK)
    hour: int | None = None
    count: int = 0

    @property
    def learned(self) -> bool:
        return any(self.seen)

    def fold(self, hour: int, count: int) -> None:
        """Add one finished hour's count to its hour-of-week mean."""
        b = hour_of_week(hour)
        if self.seen[b] == 0:
            self.rates[b] = float(count)
        else:
            self.rates[b] += ALPHA * (count - self.rates[b])
        self.seen[b] += 1

    def advance(self, hour: int) -> None:
        """Close the counted hour and every empty hour before `hour` (at most a week of them)."""
        if self.hour is None:
            self.hour, self.count = hour, 0
            return
        if hour <= self.hour:
            return
        self.fold(self.hour, self.count)
        for empty in range(max(self.hour + 1, hour - HOURS_PER_WEEK), hour):
            self.fold(empty, 0)
        self.hour, self.count = hour, 0

    def add(self, when: datetime) -> None:
        """Count one post at its public time; a post older than the counted hour is late and
        is not counted (its hour is already folded)."""
        hour = epoch_hour(when)
        self.advance(hour)
        if hour == self.hour:
            self.count += 1

    def level(self) -> float:
        """Mean posts per hour over the hours of the week seen so far."""
        known = [r for r, n in zip(self.rates, self.seen, strict=True) if n]
        return sum(known) / len(known) if known else 0.0

    def peak(self, *, before: int, hours: int = 24) -> float:
        """The most posts counted in one whole hour among the `hours` before epoch hour
        `before` (a cold start's usual rate: the account's first day holds no hour of the week
        twice). Hours at or after `before` do not count, so a burst cannot raise its own bar."""
        last = before if self.hour is None else min(before, self.hour)
        counts = [
            self.rates[hour_of_week(h)]
            for h in range(max(last - hours, last - HOURS_PER_WEEK), last)
            if self.seen[hour_of_week(h)]
        ]
        return max(counts, default=0.0)

    def expected(self, when: datetime) -> float:
        """Usual posts per hour at `when`'s hour of the week."""
        b = hour_of_week(epoch_hour(when))
        trust = min(self.seen[b], FULL_TRUST) / FULL_TRUST
        return trust * self.rates[b] + (1 - trust) * self.level()

    @classmethod
    def from_history(cls, times: Iterable[datetime], *, until: datetime) -> Baseline:
        """Learn from past posts' public times, every whole hour from the first to `until`."""
        counts: dict[int, int] = {}
        for when in times:
            hour = epoch_hour(when)
            counts[hour] = counts.get(hour, 0) + 1
        base = cls()
        end = epoch_hour(until)
        hours = [h for h in counts if h < end]
        if not hours:
            return base
        for hour in range(min(hours), end):
            base.fold(hour, counts.get(hour, 0))
        base.hour, base.count = end, 0
        return base

    def to_json(self) -> dict[str, Any]:
        return {
            "rates": [round(r, 4) for r in self.rates],
            "seen": list(self.seen),
            "hour": self.hour,
            "count": self.count,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Baseline:
        if not data:
            return cls()
        return cls(
            rates=[float(r) for r in data["rates"]],
            seen=[int(n) for n in data["seen"]],
            hour=data.get("hour"),
            count=int(data.get("count", 0)),
        )
