"""Latency and SLA attainment per brand, team, priority, platform, topic, local hour or language,
in one of two units: "case" (each case's first response, metrics.figures) or "post" (each
customer post's wait for the brand's next reply, metrics.post_figures); computed in SQL, given
as table rows, text and CSV. By language, a case counts under its first post's language and a
post under its own ("unknown" where detection could not tell, "not detected" where it never
ran)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from socialcare.cases.models import Case
from socialcare.db import utcnow
from socialcare.metrics.digest_model import Figures
from socialcare.metrics.figures import NO_TEAM, Scope, figures_by
from socialcare.metrics.localtime import LocalTime, zone
from socialcare.metrics.post_figures import post_figures_by
from socialcare.metrics.spreadsheet import neutralise
from socialcare.posts.models import Post

GROUPINGS = ("brand", "team", "priority", "platform", "topic", "hour", "language")
HEADERS = ("group", "cases", "answered", "unanswered", "p50_s", "p90_s", "sla_%")
UNITS = ("case", "post")
# What each unit measures, as headings say it (so no one reads one unit's figures as the other's).
UNIT_TITLES = {"case": "first response per case", "post": "next reply per customer post"}
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

__all__ = [
    "GROUPINGS",
    "HEADERS",
    "NO_TEAM",
    "UNITS",
    "UNIT_TITLES",
    "LatencyRow",
    "headers",
    "latency_by",
    "latency_total",
]


@dataclass
class LatencyRow:
    """Latency and SLA figures of one group of cases (unit "case") or customer posts ("post":
    then `cases` counts posts, and the SLA is the next-reply SLA)."""

    group: str
    cases: int
    answered: int
    unanswered: int
    median_seconds: float | None
    p90_seconds: float | None
    # within SLA / (within + missed); unanswered cases count as missed once past their SLA and
    # are left out while still within it. None when no case has been judged yet.
    sla_attainment: float | None
    p95_seconds: float | None = None
    mean_seconds: float | None = None


def _row(group: str, f: Figures) -> LatencyRow:
    return LatencyRow(
        group,
        f.cases,
        f.answered,
        f.unanswered,
        f.p50_s,
        f.p90_s,
        f.sla_attainment,
        f.p95_s,
        f.mean_s,
    )


def _unit(unit: str) -> str:
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    return unit


def _sla(sla_seconds: Mapping[str, int] | None, unit: str = "case") -> dict[str, int]:
    """The SLA table of the unit (first response per case, next reply per post), unless given."""
    if sla_seconds is not None:
        return dict(sla_seconds)
    from socialcare.config import get_settings

    settings = get_settings()
    return dict(settings.next_reply_sla_seconds if unit == "post" else settings.sla_seconds)


def _figures_by(
    session: Session,
    unit: str,
    scope: Scope,
    sla: Mapping[str, int],
    dimension: str = "all",
    group: Any = None,
) -> dict[str, Figures]:
    if unit == "post":
        return post_figures_by(
            session=session,
            scope=scope,
            next_reply_sla_seconds=sla,
            dimension=dimension,
            group=group,
        )
    return figures_by(
        session=session, scope=scope, sla_seconds=sla, dimension=dimension, group=group
    )


def _scope(since: datetime | None, until: datetime | None, now: datetime | None) -> Scope:
    return Scope(since or EARLIEST, until or LATEST, now or utcnow())


def latency_by(
    session: Session,
    *,
    by: str = "brand",
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    sla_seconds: Mapping[str, int] | None = None,
    tz: str = "UTC",
    unit: str = "case",
) -> list[LatencyRow]:
    """Latency rows per group for cases opened in [since, until) (unit "case"), or for customer
    posts made in it (unit "post"), as of now; sorted by group.

    Brands are labelled "handle" when every brand is on one platform, else "platform:handle";
    hours are the local hour of day (00..23) in tz when the customer posted.
    With now, cases opened (posts made) after it are left out and replies after it do not count
    yet. sla_seconds (per priority): for cases, it covers those without sla_due_at (default:
    SLA_SECONDS); for posts, it is the next-reply SLA (default: NEXT_REPLY_SLA_SECONDS).
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    unit = _unit(unit)
    scope = _scope(since, until, now)
    sla = _sla(sla_seconds, unit)
    group: Any = None
    dimension = "account" if by == "brand" else by
    if by == "hour":
        zone(tz)  # an unknown zone is a ValueError here, not a database error
        dialect = session.get_bind().dialect.name
        column = Post.created_at if unit == "post" else Case.opened_at
        local = LocalTime(column, tz=tz, start=scope.start, end=scope.end, dialect=dialect)
        group = local.hour()
        dimension = "all"
    found = _figures_by(session, unit, scope, sla, dimension, group)
    if by == "hour":
        found = {f"{int(float(h)):02d}": f for h, f in found.items()}
    if by == "brand" and len({name.split(":", 1)[0] for name in found}) <= 1:
        found = {name.split(":", 1)[1]: f for name, f in found.items()}
    return [_row(name, found[name]) for name in sorted(found)]


def latency_total(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    sla_seconds: Mapping[str, int] | None = None,
    unit: str = "case",
) -> LatencyRow:
    """One row, group "all", over every case opened (unit "case") or customer post made (unit
    "post") in [since, until) as of now."""
    unit = _unit(unit)
    found = _figures_by(session, unit, _scope(since, until, now), _sla(sla_seconds, unit))
    figures = found.get("all")
    if figures is None:
        return LatencyRow("all", 0, 0, 0, None, None, None)
    return _row("all", figures)


def headers(unit: str | None = None) -> tuple[str, ...]:
    """The table's columns: HEADERS without a unit; with one, the count named after the unit
    ("cases" or "posts") and p95 and mean beside p50 and p90."""
    if unit is None:
        return HEADERS
    count = "posts" if _unit(unit) == "post" else "cases"
    return ("group", count, "answered", "unanswered", "p50_s", "p90_s", "p95_s", "mean_s", "sla_%")


def _cells(row: LatencyRow, unit: str | None = None) -> list[str | int | float]:
    """A row's values in headers(unit) order, rounded to 1 decimal, "" for missing figures."""

    def r(value: float | None) -> float | str:
        return "" if value is None else round(value, 1)

    pct = None if row.sla_attainment is None else row.sla_attainment * 100.0
    spread = [] if unit is None else [r(row.p95_seconds), r(row.mean_seconds)]
    return [
        row.group,
        row.cases,
        row.answered,
        row.unanswered,
        r(row.median_seconds),
        r(row.p90_seconds),
        *spread,
        r(pct),
    ]


def format_table(rows: Sequence[LatencyRow], unit: str | None = None) -> str:
    """An aligned plain-text table (group left, numbers right; "-" where there is no figure),
    with headers(unit)."""
    columns = headers(unit)
    body = []
    for row in rows:
        group, *figures = _cells(row, unit)
        body.append([str(group), *("-" if c == "" else _num(c) for c in figures)])
    widths = [max([len(h)] + [len(str(line[i])) for line in body]) for i, h in enumerate(columns)]

    def fmt(line: Sequence[Any]) -> str:
        first = str(line[0]).ljust(widths[0])
        rest = [str(c).rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    lines = [fmt(columns), fmt(["-" * w for w in widths])]
    lines.extend(fmt(line) for line in body)
    return "\n".join(lines) + "\n"


def _num(value: str | int | float) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def format_csv(rows: Sequence[LatencyRow], unit: str | None = None) -> str:
    """CSV text: a header row, then one line per row (figures rounded to 1 decimal). With a
    unit, the first column, `unit`, says on every line which unit the figures measure, and the
    columns are headers(unit); without one, the columns are HEADERS (first responses)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    lead = [] if unit is None else ["unit"]
    writer.writerow([*lead, *headers(unit)])
    label = [] if unit is None else [_unit(unit)]
    for row in rows:
        group, *figures = _cells(row, unit)
        writer.writerow([*label, neutralise(str(group)), *figures])
    return buf.getvalue()
