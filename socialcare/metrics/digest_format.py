"""How a digest writes numbers: durations, percentages, changes against the previous period."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from socialcare.metrics.digest_model import Digest

MISSING = "n/a"
UP, DOWN, FLAT = "↑", "↓", "→"


def clean(text: str) -> str:
    """Untrusted text on one line: control characters and line breaks become spaces."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def format_duration(seconds: float | None) -> str:
    """'45s', '4m 05s', '2h 10m', '3d 04h'; 'n/a' for None."""
    if seconds is None:
        return MISSING
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m {total % 60:02d}s"
    minutes = round(total / 60)
    if minutes < 24 * 60:
        return f"{minutes // 60}h {minutes % 60:02d}m"
    hours = round(total / 3600)
    return f"{hours // 24}d {hours % 24:02d}h"


def short_duration(seconds: float) -> str:
    """The one rough duration everywhere (pages, SLA labels, chart axes): '45s', '14m', '2h 05m',
    '3d 4h'. Whole minutes from a minute up (cut down, never rounded up, as the pages' live
    countdown does); the sign is dropped, the caller says "due in" or "overdue by"."""
    whole = int(abs(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def format_percent(ratio: float | None) -> str:
    """'92%' for 0.92; a rate just short of 100% keeps a decimal so it never reads as 100%."""
    if ratio is None:
        return MISSING
    pct = ratio * 100
    if 99.5 <= pct < 100:
        return f"{min(pct, 99.9):.1f}%"
    return f"{pct:.0f}%"


def format_count(n: int) -> str:
    """'12,345'."""
    return f"{n:,}"


def arrow(delta: float) -> str:
    """↑, ↓ or → for a change's sign."""
    return UP if delta > 0 else DOWN if delta < 0 else FLAT


def duration_change(current: float | None, previous: float | None) -> str:
    """'12m 00s ↓ (was 18m 00s, -33%)'; just the current value when there is nothing to compare."""
    now = format_duration(current)
    if current is None or previous is None:
        return now
    delta = current - previous
    was = format_duration(previous)
    if previous <= 0:
        return f"{now} {arrow(delta)} (was {was})"
    pct = round(delta / previous * 100)
    return f"{now} {arrow(pct)} (was {was}, {pct:+d}%)"


def percent_change(current: float | None, previous: float | None) -> str:
    """'92% ↑ (was 88%, +4 pts)': attainment changes are in percentage points."""
    now = format_percent(current)
    if current is None or previous is None:
        return now
    points = round((current - previous) * 100)
    return f"{now} {arrow(points)} (was {format_percent(previous)}, {points:+d} pts)"


def zone(name: str) -> tzinfo:
    """The IANA zone, or UTC when the name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(zone(tz))


def period_label(digest: Digest) -> str:
    """'Mon 3 Mar 2025' for a day, '3 Mar to 9 Mar 2025' (en dash) for a week (end is exclusive)."""
    first = _local(digest.start, digest.tz)
    last = _local(digest.end - timedelta(microseconds=1), digest.tz)
    if first.date() == last.date():
        return f"{first:%a} {first.day} {first:%b %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%b} – {last.day} {last:%b %Y}"
    return f"{first.day} {first:%b %Y} – {last.day} {last:%b %Y}"


def title(digest: Digest) -> str:
    """'Acme: weekly first-response digest'."""
    kind = "daily" if digest.period == "day" else "weekly"
    return f"{clean(digest.brand)}: {kind} first-response digest"


def safe_url(url: str | None) -> str | None:
    """The URL when it is http(s), else None: a digest never links to javascript: or data:."""
    if url is None:
        return None
    cleaned = url.strip()
    if cleaned.lower().startswith(("https://", "http://")) and not any(
        c.isspace() or ord(c) < 32 for c in cleaned
    ):
        return cleaned
    return None
