"""First-response latency and SLA attainment per brand, team, priority or platform."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, and_, case, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from socialcare.cases.models import Case
from socialcare.posts.models import Account
from socialcare.routing.models import Team

GROUPINGS = ("brand", "team", "priority", "platform")
HEADERS = ("group", "cases", "answered", "unanswered", "p50_s", "p90_s", "sla_%")
NO_TEAM = "(no team)"


class SecondsBetween(FunctionElement[float]):
    """SQL expression: seconds from start to end (two timestamp columns), NULL if either is."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(SecondsBetween, "postgresql")
def _seconds_pg(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    end, start = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)}))"


@compiles(SecondsBetween, "sqlite")
def _seconds_sqlite(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    end, start = list(element.clauses)
    # julianday() is a double of days: round to the millisecond to drop float noise.
    return (
        f"ROUND((julianday({compiler.process(end, **kw)}) - "
        f"julianday({compiler.process(start, **kw)})) * 86400.0, 3)"
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0 <= q <= 1) by linear interpolation, like percentile_cont; None if empty."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within [0, 1], got {q!r}")
    if not values:
        return None
    ordered = sorted(float(v) for v in values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    frac = pos - lo
    return ordered[lo] + (ordered[hi] - ordered[lo]) * frac


@dataclass
class LatencyRow:
    """Latency and SLA figures of one group of cases."""

    group: str
    cases: int
    answered: int
    unanswered: int
    median_seconds: float | None
    p90_seconds: float | None
    sla_attainment: float | None  # answered within SLA / all cases; None without cases


@dataclass(frozen=True)
class _CaseFigures:
    """What the report needs of one case, as fetched from the database."""

    key: tuple[Any, ...]
    seconds: float | None  # first-response latency; None when unanswered (as of now)
    on_time: bool  # answered by sla_due_at (compared in SQL, exactly)
    has_due: bool  # False: no sla_due_at, so the priority's SLA applies
    priority: str


def _group_columns(by: str) -> list[ColumnElement[Any] | QueryableAttribute[Any]]:
    if by == "brand":
        return [Account.platform, Account.handle]
    if by == "team":
        return [Team.name]
    if by == "priority":
        return [Case.priority]
    if by == "platform":
        return [Case.platform]
    if by == "all":
        return [literal("all")]
    raise ValueError(f"by must be one of {', '.join(GROUPINGS)}, got {by!r}")


def _query(
    by: str, since: datetime | None, until: datetime | None, now: datetime | None
) -> Select[Any]:
    answered: ColumnElement[bool] = Case.first_response_at.is_not(None)
    if now is not None:
        answered = and_(answered, Case.first_response_at <= now)
    seconds = case((answered, SecondsBetween(Case.first_response_at, Case.opened_at)), else_=None)
    on_time = case((and_(answered, Case.first_response_at <= Case.sla_due_at), 1), else_=0)
    stmt = select(
        *_group_columns(by),
        seconds.label("seconds"),
        on_time.label("on_time"),
        case((Case.sla_due_at.is_(None), 0), else_=1).label("has_due"),
        Case.priority,
    ).select_from(Case)
    if by == "brand":
        stmt = stmt.join(Account, Account.id == Case.account_id)
    elif by == "team":
        stmt = stmt.outerjoin(Team, Team.id == Case.team_id)
    if since is not None:
        stmt = stmt.where(Case.opened_at >= since)
    if until is not None:
        stmt = stmt.where(Case.opened_at < until)
    if now is not None:
        stmt = stmt.where(Case.opened_at <= now)
    return stmt


def _fetch(
    session: Session,
    by: str,
    since: datetime | None,
    until: datetime | None,
    now: datetime | None,
) -> list[_CaseFigures]:
    width = len(_group_columns(by))
    out = []
    for row in session.execute(_query(by, since, until, now)):
        seconds = None if row.seconds is None else max(0.0, float(row.seconds))
        figures = _CaseFigures(
            tuple(row[:width]), seconds, bool(row.on_time), bool(row.has_due), row.priority
        )
        out.append(figures)
    return out


def _summarise(
    group: str, figures: Iterable[_CaseFigures], sla_for: Callable[[str], float | None]
) -> LatencyRow:
    items = list(figures)
    latencies = [f.seconds for f in items if f.seconds is not None]
    met = 0
    for f in items:
        if f.on_time:
            met += 1
        elif f.seconds is not None and not f.has_due:
            allowed = sla_for(f.priority)
            met += allowed is not None and f.seconds <= allowed
    return LatencyRow(
        group=group,
        cases=len(items),
        answered=len(latencies),
        unanswered=len(items) - len(latencies),
        median_seconds=percentile(latencies, 0.5),
        p90_seconds=percentile(latencies, 0.9),
        sla_attainment=met / len(items) if items else None,
    )


def _sla_lookup(sla_seconds: Mapping[str, int] | None) -> Callable[[str], float | None]:
    """SLA allowance per priority for cases without sla_due_at; settings read only if needed."""
    table: dict[str, int] = dict(sla_seconds) if sla_seconds is not None else {}
    loaded = sla_seconds is not None

    def lookup(priority: str) -> float | None:
        nonlocal loaded
        if not loaded:
            from socialcare.config import get_settings

            table.update(get_settings().sla_seconds)
            loaded = True
        value = table.get(priority)
        return None if value is None else float(value)

    return lookup


def _label(by: str, key: tuple[Any, ...], platforms: set[str]) -> str:
    if by == "brand":
        platform, handle = key
        return str(handle) if len(platforms) <= 1 else f"{platform}:{handle}"
    if by == "team":
        return NO_TEAM if key[0] is None else str(key[0])
    return str(key[0])


def latency_by(
    session: Session,
    *,
    by: str = "brand",
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    sla_seconds: Mapping[str, int] | None = None,
) -> list[LatencyRow]:
    """Latency rows per group for cases opened in [since, until), as of now; sorted by group.

    Brands are labelled "handle" when every brand is on one platform, else "platform:handle".
    With now, cases opened after it are left out and replies after it do not count yet.
    sla_seconds (per priority) covers cases without sla_due_at; default: the settings' table.
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    figures = _fetch(session, by, since, until, now)
    platforms = {str(f.key[0]) for f in figures} if by == "brand" else set()
    groups: dict[str, list[_CaseFigures]] = {}
    for f in figures:
        groups.setdefault(_label(by, f.key, platforms), []).append(f)
    sla_for = _sla_lookup(sla_seconds)
    return [_summarise(name, groups[name], sla_for) for name in sorted(groups)]


def latency_total(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    sla_seconds: Mapping[str, int] | None = None,
) -> LatencyRow:
    """One row, group "all", over every case opened in [since, until) as of now."""
    figures = _fetch(session, "all", since, until, now)
    return _summarise("all", figures, _sla_lookup(sla_seconds))


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
        writer.writerow(_cells(row))
    return buf.getvalue()
