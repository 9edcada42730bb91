"""First-response figures computed in the database: percentiles, SLA, the latency split.

One row per case in the base query; every aggregate (counts, mean, percentiles, SLA attainment)
is SQL. PostgreSQL computes percentiles with percentile_cont; SQLite, which has none, with window
functions that interpolate the same way (linear between the two nearest ranks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    Subquery,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import QueryableAttribute, Session, aliased

from socialcare.cases.models import Case
from socialcare.db import SecondsBetween, at
from socialcare.metrics.digest_model import Figures, empty_figures
from socialcare.people.models import Team
from socialcare.posts.models import Account, Post

# The row type of a select that in_scope narrows (kept as it is).
Row = TypeVarTuple("Row")
QUANTILES = (0.5, 0.9, 0.95)
NO_TEAM = "(no team)"
DIMENSIONS = ("all", "brand", "account", "platform", "team", "priority", "topic", "language")
# How a language group is named: posts.language holds an ISO 639-1 code, "und" where detection
# could not tell, or NULL for a post stored before languages were detected.
UNKNOWN_LANGUAGE = "und"
LANGUAGE_UNKNOWN = "unknown"
LANGUAGE_NOT_DETECTED = "not detected"
# A case's first post, joined by case_rows where a case is grouped by its language.
ROOT_POST = aliased(Post, name="root_post")


@dataclass(frozen=True)
class Scope:
    """Which cases: opened in [start, end), public by now, of one brand account or all."""

    start: datetime
    end: datetime
    now: datetime
    account_id: int | None = None


def in_scope(stmt: Select[*Row], scope: Scope) -> Select[*Row]:
    """stmt (a select over cases) limited to the cases in scope: opened in [start, end), public
    by now, of its account when it names one."""
    stmt = stmt.where(Case.opened_at >= at(scope.start), Case.opened_at < at(scope.end))
    stmt = stmt.where(Case.opened_at <= at(scope.now))
    if scope.account_id is not None:
        stmt = stmt.where(Case.account_id == scope.account_id)
    return stmt


def _allowed_seconds(sla_seconds: Mapping[str, int]) -> ColumnElement[float]:
    """The case's SLA allowance: up to its due time, else its priority's from the settings."""
    by_priority = case(
        *[(Case.priority == p, float(s)) for p, s in sla_seconds.items()], else_=None
    )
    return func.coalesce(SecondsBetween(Case.sla_due_at, Case.opened_at), by_priority)


def _group(dimension: str) -> ColumnElement[Any] | QueryableAttribute[Any]:
    if dimension == "all":
        return literal("all")
    if dimension == "brand":
        return Account.handle
    if dimension == "account":
        return Account.platform + ":" + Account.handle
    if dimension == "platform":
        return Case.platform
    if dimension == "team":
        return func.coalesce(Team.name, NO_TEAM)
    if dimension == "priority":
        return Case.priority
    if dimension == "topic":
        return func.coalesce(Case.topic, "other")
    if dimension == "language":
        return language_label(ROOT_POST.language)  # case_rows joins it for this dimension
    raise ValueError(f"dimension must be one of {', '.join(DIMENSIONS)}, got {dimension!r}")


def language_label(language: ColumnElement[Any] | QueryableAttribute[Any]) -> ColumnElement[str]:
    """A post's language as a group name: its code, "unknown" for "und", "not detected" for
    NULL."""
    return case(
        (language.is_(None), LANGUAGE_NOT_DETECTED),
        (language == UNKNOWN_LANGUAGE, LANGUAGE_UNKNOWN),
        else_=language,
    )


def sla_parts(
    scope: Scope, sla_seconds: Mapping[str, int]
) -> tuple[ColumnElement[bool], ColumnElement[bool], ColumnElement[bool]]:
    """(answered by now, answered within SLA, missed: answered late or still waiting past it)."""
    now = at(scope.now)
    answered = and_(Case.first_response_at.is_not(None), Case.first_response_at <= now)
    frt = SecondsBetween(Case.first_response_at, Case.opened_at)
    allowed = _allowed_seconds(sla_seconds)
    waited_past = SecondsBetween(now, Case.opened_at) > allowed
    return (
        answered,
        and_(answered, frt <= allowed),
        or_(and_(answered, frt > allowed), and_(~answered, waited_past)),
    )


def case_rows(
    scope: Scope,
    sla_seconds: Mapping[str, int],
    group: ColumnElement[Any] | QueryableAttribute[Any] | None = None,
    *,
    root_post: bool = False,
) -> Select[Any]:
    """One row per case in scope: its group, latencies in seconds (NULL where not applicable)
    and whether it met, missed or still waits within its SLA, all as of scope.now. root_post:
    join the case's first post as ROOT_POST (for a group over it, such as its language)."""
    now = at(scope.now)
    answered, met, missed = sla_parts(scope, sla_seconds)
    frt = SecondsBetween(Case.first_response_at, Case.opened_at)
    claimed = and_(Case.claimed_at.is_not(None), Case.claimed_at <= now)
    stmt = (
        select(
            (group if group is not None else literal("all")).label("g"),
            case((answered, 1), else_=0).label("answered"),
            case((answered, frt), else_=None).label("frt"),
            SecondsBetween(Case.detected_at, Case.opened_at).label("detection"),
            case((claimed, SecondsBetween(Case.claimed_at, Case.queued_at)), else_=None).label(
                "waiting"
            ),
            case(
                (
                    and_(answered, claimed, Case.first_response_at >= Case.claimed_at),
                    SecondsBetween(Case.first_response_at, Case.claimed_at),
                ),
                else_=None,
            ).label("handling"),
            case((met, 1), else_=0).label("met"),
            case((missed, 1), else_=0).label("missed"),
        )
        .select_from(Case)
        .outerjoin(Team, Team.id == Case.team_id)
        .join(Account, Account.id == Case.account_id)
    )
    if root_post:
        stmt = stmt.outerjoin(ROOT_POST, ROOT_POST.id == Case.root_post_id)
    return in_scope(stmt, scope)


def _percentile_columns(
    dialect: str, base: Subquery, column: str, quantiles: Sequence[float]
) -> tuple[Select[Any] | None, list[ColumnElement[Any]]]:
    """Percentiles of one column per group: PostgreSQL aggregates over base itself (no extra
    query); SQLite needs a ranked subquery, returned for a separate select."""
    value = base.c[column]
    if dialect == "postgresql":
        return None, [
            func.percentile_cont(q).within_group(value.asc()).label(f"{column}_{q}")
            for q in quantiles
        ]
    ranked = (
        select(
            base.c.g,
            value.label("x"),
            func.row_number().over(partition_by=base.c.g, order_by=value).label("rn"),
            func.count().over(partition_by=base.c.g).label("n"),
        )
        .where(value.is_not(None))
        .subquery()
    )
    cols: list[ColumnElement[Any]] = []
    for q in quantiles:
        pos = cast(ranked.c.n - 1, Float) * q
        lo = cast(pos, Integer) + 1  # 1-based rank at or below the position (pos >= 0)
        frac = pos - cast(pos, Integer)
        cols.append(
            func.sum(
                case(
                    (ranked.c.rn == lo, ranked.c.x * (1 - frac)),
                    (ranked.c.rn == lo + 1, ranked.c.x * frac),
                    else_=0.0,
                )
            ).label(f"{column}_{q}")
        )
    return select(ranked.c.g, *cols).group_by(ranked.c.g), []


def figures_by(
    *,
    session: Session,
    scope: Scope,
    sla_seconds: Mapping[str, int],
    dimension: str = "all",
    group: ColumnElement[Any] | None = None,
) -> dict[str, Figures]:
    """Figures per group of the dimension (or of the group expression, such as a local day) for
    the cases in scope; groups without cases are absent."""
    base = case_rows(
        scope,
        sla_seconds,
        group if group is not None else _group(dimension),
        root_post=group is None and dimension == "language",
    ).subquery()
    dialect = session.get_bind().dialect.name
    wanted = {"frt": QUANTILES, "detection": (0.5,), "waiting": (0.5,), "handling": (0.5,)}
    extra: list[ColumnElement[Any]] = []
    separate: list[Select[Any]] = []
    for column, quantiles in wanted.items():
        query, cols = _percentile_columns(dialect, base, column, quantiles)
        extra.extend(cols)
        if query is not None:
            separate.append(query)
    main = select(
        base.c.g,
        func.count().label("cases"),
        func.sum(base.c.answered).label("answered"),
        func.avg(base.c.frt).label("mean"),
        func.sum(base.c.met).label("met"),
        func.sum(base.c.missed).label("missed"),
        *extra,
    ).group_by(base.c.g)
    values: dict[str, dict[str, Any]] = {
        str(row.g): dict(row._mapping) for row in session.execute(main)
    }
    for query in separate:
        for row in session.execute(query):
            values.setdefault(str(row.g), {}).update(row._mapping)
    return {group: _figures(v) for group, v in values.items() if v.get("cases")}


def _num(value: Any) -> float | None:
    return None if value is None else max(0.0, float(value))


def _figures(v: Mapping[str, Any]) -> Figures:
    cases, answered = int(v["cases"]), int(v["answered"] or 0)
    judged = int(v["met"] or 0) + int(v["missed"] or 0)
    return Figures(
        cases=cases,
        answered=answered,
        unanswered=cases - answered,
        p50_s=_num(v.get("frt_0.5")),
        p90_s=_num(v.get("frt_0.9")),
        p95_s=_num(v.get("frt_0.95")),
        mean_s=_num(v.get("mean")),
        sla_attainment=int(v["met"] or 0) / judged if judged else None,
        detection_p50_s=_num(v.get("detection_0.5")),
        waiting_p50_s=_num(v.get("waiting_0.5")),
        handling_p50_s=_num(v.get("handling_0.5")),
    )


def total_figures(*, session: Session, scope: Scope, sla_seconds: Mapping[str, int]) -> Figures:
    """Figures over every case in scope (empty figures when there are none)."""
    found = figures_by(session=session, scope=scope, sla_seconds=sla_seconds)
    return found.get("all", empty_figures())


def missed_filter(scope: Scope, sla_seconds: Mapping[str, int]) -> ColumnElement[bool]:
    """Cases that missed their SLA as of scope.now: answered late or still waiting past it."""
    return sla_parts(scope, sla_seconds)[2]
