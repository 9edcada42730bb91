"""First-response latency and SLA attainment per brand, team, priority, platform, topic or
local hour: the figures of metrics.figures (computed in SQL) as table rows, text and CSV."""

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
from socialcare.metrics.spreadsheet import neutralise

GROUPINGS = ("brand", "team", "priority", "platform", "topic", "hour")
HEADERS = ("group", "cases", "answered", "unanswered", "p50_s", "p90_s", "sla_%")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

__all__ = ["GROUPINGS", "HEADERS", "NO_TEAM", "LatencyRow", "latency_by", "latency_total"]


@dataclass
class LatencyRow:
    """Latency and SLA figures of one group of cases."""

    group: str
    cases: int
    answered: int
    unanswered: int
    median_seconds: float | None
    p90_seconds: float | None
    # within SLA / (within + missed); unanswered cases count as missed once past their SLA and
    # are left out while still within it. None when no case has been judged yet.
    sla_attainment: float | None


def _row(group: str, f: Figures) -> LatencyRow:
    return LatencyRow(group, f.cases, f.answered, f.unanswered, f.p50_s, f.p90_s, f.sla_attainment)


def _sla(sla_seconds: Mapping[str, int] | None) -> dict[str, int]:
    if sla_seconds is not None:
        return dict(sla_seconds)
    from socialcare.config import get_settings

    return dict(get_settings().sla_seconds)


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
) -> list[LatencyRow]:
    """Latency rows per group for cases opened in [since, until), as of now; sorted by group.

    Brands are labelled "handle" when every brand is on one platform, else "platform:handle";
    hours are the local hour of day (00..23) in tz when the customer posted.
    With now, cases opened after it are left out and replies after it do not count yet.
    sla_seconds (per priority) covers cases without sla_due_at; default: the settings' table.
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    scope = _scope(since, until, now)
    sla = _sla(sla_seconds)
    group: Any = None
    dimension = "account" if by == "brand" else by
    if by == "hour":
        zone(tz)  # an unknown zone is a ValueError here, not a database error
        dialect = session.get_bind().dialect.name
        local = LocalTime(Case.opened_at, tz=tz, start=scope.start, end=scope.end, dialect=dialect)
        group = local.hour()
        dimension = "all"
    found = figures_by(
        session=session, scope=scope, sla_seconds=sla, dimension=dimension, group=group
    )
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
) -> LatencyRow:
    """One row, group "all", over every case opened in [since, until) as of now."""
    found = figures_by(
        session=session, scope=_scope(since, until, now), sla_seconds=_sla(sla_seconds)
    )
    figures = found.get("all")
    if figures is None:
        return LatencyRow("all", 0, 0, 0, None, None, None)
    return _row("all", figures)


def _cells(row: LatencyRow) -> list[str | int | float]:
    """A row's values in HEADERS order, rounded to 1 decimal, "" for missing figures."""

    def r(value: float | None) -> float | str:
        return "" if value is None else round(value, 1)

    pct = None if row.sla_attainment is None else row.sla_attainment * 100.0
    return [
        row.group,
        row.cases,
        row.answered,
        row.unanswered,
        r(row.median_seconds),
        r(row.p90_seconds),
        r(pct),
    ]


def format_table(rows: Sequence[LatencyRow]) -> str:
    """An aligned plain-text table (group left, numbers right; "-" where there is no figure)."""
    body = []
    for row in rows:
        group, *figures = _cells(row)
        body.append([str(group), *("-" if c == "" else _num(c) for c in figures)])
    widths = [max([len(h)] + [len(str(line[i])) for line in body]) for i, h in enumerate(HEADERS)]

    def fmt(line: Sequence[Any]) -> str:
        first = str(line[0]).ljust(widths[0])
        rest = [str(c).rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    lines = [fmt(HEADERS), fmt(["-" * w for w in widths])]
    lines.extend(fmt(line) for line in body)
    return "\n".join(lines) + "\n"


def _num(value: str | int | float) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def format_csv(rows: Sequence[LatencyRow]) -> str:
    """CSV text: a header row, then one line per row (figures rounded to 1 decimal)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADERS)
    for row in rows:
        group, *figures = _cells(row)
        writer.writerow([neutralise(str(group)), *figures])
    return buf.getvalue()
