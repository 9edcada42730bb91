"""Read-only queries behind the web pages: the queue, its filter menus, the team list and the
sources (one case's thread is in socialcare.web.case_query)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session, aliased

from socialcare.cases.models import OPEN_STATUSES, Case
from socialcare.config import Settings
from socialcare.ingest.status import ingestion_status, recent_incidents
from socialcare.metrics.digest_format import short_duration
from socialcare.people.models import Agent, Team
from socialcare.posts.models import Post, Score

QUEUE_PAGE = 50  # rows on a page of the queue (and /api/queue's default)
QUEUE_LIMIT = 200  # the most /api/queue returns at once, and what the floor looks through
QUEUE_MAX_OFFSET = 100_000  # deeper than anyone pages: narrow the filters instead
TEXT_LIMIT = 280


@dataclass
class QueueRow:
    """One open case as the queue page, /api/queue and the floor show it (the API's schema
    too)."""

    id: int
    priority: str
    urgency: float
    topic: str | None
    customer_handle: str
    text: str  # the root post's text, truncated; escaped by the template, never marked safe
    reasons: list[str]
    top_reasons: list[str]  # the (at most) three signals that added most to the urgency
    followers: int | None
    verified: bool
    team: str | None
    status: str
    claimed_by: str | None
    platform: str
    claimed_at: datetime | None
    claim_expires_at: datetime | None
    needs_lead: bool
    opened_at: datetime
    sla_due_at: datetime | None
    first_response_at: datetime | None
    response_seconds: float | None
    sla_label: str
    overdue: bool
    viewers: list[str] = field(default_factory=list)  # who has the case open (for the API)
    language: str | None = None  # of the root post: ISO 639-1, "und", or None (not detected)
    # When the customer's current wait began (the case's first post, or the first they wrote
    # after the brand's reply), and the next-reply SLA's due time while they wait again.
    waiting_since: datetime | None = None
    reply_due_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; timestamps in ISO 8601."""
        out: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


def truncate(text: str, limit: int = TEXT_LIMIT) -> str:
    """text cut to limit characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.3g}"


def reason_labels(reasons: Any) -> list[str]:
    """Score reasons as one label each: the signal, value times weight, then any detail."""
    if not isinstance(reasons, list):
        return []
    labels = []
    for item in reasons:
        if not isinstance(item, dict):
            labels.append(str(item))
            continue
        value, weight = _number(item.get("value")), _number(item.get("weight"))
        label = f"{item.get('signal', '?')} {value}×{weight}"
        if item.get("detail"):
            label += f" ({item['detail']})"
        labels.append(label)
    return labels


def top_signals(reasons: Any, n: int = 3) -> list[Any]:
    """The n reasons that contributed most (value times weight), leaving out those that added
    nothing."""
    if not isinstance(reasons, list):
        return []

    def contribution(item: Any) -> float:
        try:
            return float(item.get("value", 0)) * float(item.get("weight", 0))
        except (AttributeError, TypeError, ValueError):
            return 0.0

    ranked = sorted((r for r in reasons if contribution(r) > 0), key=contribution, reverse=True)
    return ranked[:n]


def response_time(seconds: float) -> str:
    """A first-response time: 45s, 4m 10s, or short_duration beyond an hour."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return short_duration(seconds)


def sla_state(
    due: datetime | None, first_response: datetime | None, now: datetime
) -> tuple[str, bool]:
    """("due in Xm" | "overdue by Xm" | "met" | "missed by Xm" | "no SLA", overdue flag)."""
    if due is None:
        return "no SLA", False
    if first_response is not None:
        if first_response <= due:
            return "met", False
        return f"missed by {short_duration((first_response - due).total_seconds())}", True
    if now > due:
        return f"overdue by {short_duration((now - due).total_seconds())}", True
    return f"due in {short_duration((due - now).total_seconds())}", False


@dataclass(frozen=True)
class QueueFilter:
    """What the queue is narrowed to; None means any."""

    team: str | None = None
    status: str | None = None
    platform: str | None = None
    priority: str | None = None
    topic: str | None = None
    language: str | None = None  # of the case's first post


def _queue_filters(stmt: Select[Any], f: QueueFilter) -> Select[Any]:
    statuses = (f.status,) if f.status else OPEN_STATUSES
    stmt = stmt.where(Case.status.in_(statuses))
    if f.team:
        team_id = select(Team.id).where(Team.name == f.team).scalar_subquery()
        stmt = stmt.where(Case.team_id == team_id)
    if f.platform:
        stmt = stmt.where(Case.platform == f.platform)
    if f.priority:
        stmt = stmt.where(Case.priority == f.priority)
    if f.topic:
        stmt = stmt.where(Case.topic == f.topic)
    if f.language:
        root = aliased(Post)
        first = select(root.id).where(root.id == Case.root_post_id, root.language == f.language)
        stmt = stmt.where(first.correlate_except(root).exists())
    return stmt


def queue_rows(
    session: Session,
    *,
    now: datetime,
    team: str | None = None,
    status: str | None = None,
    limit: int = QUEUE_PAGE,
    offset: int = 0,
    where: QueueFilter | None = None,
) -> tuple[list[QueueRow], int]:
    """Open cases, P1 first then the longest wait first (since the case opened, or since the
    customer wrote again after the brand's reply), at most limit after skipping offset; and how
    many match in all."""
    stmt = (
        select(
            Case.id,
            Case.priority,
            Case.urgency,
            func.coalesce(Case.topic, Score.topic).label("topic"),
            Case.customer_handle,
            Post.text,
            Score.reasons,
            Post.author_followers,
            Post.author_verified,
            Team.name.label("team"),
            Case.status,
            Agent.handle.label("claimed_by"),
            Case.platform,
            Case.claimed_at,
            Case.claim_expires_at,
            Case.needs_lead,
            Case.opened_at,
            Case.sla_due_at,
            Case.first_response_at,
            Post.language,
            Case.waiting_since,
            Case.reply_due_at,
        )
        .select_from(Case)
        .outerjoin(Post, Case.root_post_id == Post.id)
        .outerjoin(Score, Score.post_id == Post.id)
        .outerjoin(Team, Team.id == Case.team_id)
        .outerjoin(Agent, Agent.id == Case.claimed_by)
        .order_by(Case.priority, Case.waiting_since, Case.id)
        .limit(limit)
        .offset(offset)
    )
    f = where or QueueFilter(team=team, status=status)
    stmt = _queue_filters(stmt, f)
    # count(*), not count(id): the count reads the smallest index of open cases alone.
    total = session.scalar(_queue_filters(select(func.count()).select_from(Case), f)) or 0
    return [_queue_row(r, now) for r in session.execute(stmt)], int(total)


def _queue_row(r: Row[Any], now: datetime) -> QueueRow:
    """One queue row from the query's columns, with its SLA label."""
    answered = r.first_response_at
    label, overdue = sla_state(r.sla_due_at, answered, now)
    if r.reply_due_at is not None:  # the customer wrote again: the next reply's due time
        label, overdue = sla_state(r.reply_due_at, None, now)
        label = f"next reply {label}"
    return QueueRow(
        id=r.id,
        priority=r.priority,
        urgency=float(r.urgency or 0.0),
        topic=r.topic,
        customer_handle=r.customer_handle,
        text=truncate(r.text or ""),
        reasons=reason_labels(r.reasons),
        top_reasons=reason_labels(top_signals(r.reasons)),
        followers=r.author_followers,
        verified=bool(r.author_verified),
        team=r.team,
        status=r.status,
        claimed_by=r.claimed_by,
        platform=r.platform,
        claimed_at=r.claimed_at,
        claim_expires_at=r.claim_expires_at,
        needs_lead=bool(r.needs_lead),
        opened_at=r.opened_at,
        sla_due_at=r.sla_due_at,
        first_response_at=answered,
        response_seconds=(None if answered is None else (answered - r.opened_at).total_seconds()),
        sla_label=label,
        overdue=overdue,
        language=r.language,
        waiting_since=r.waiting_since,
        reply_due_at=r.reply_due_at,
    )


def distinct_values(session: Session, column: Any) -> list[str]:
    """The values an open case has in column (for the queue's filter menus).

    A loose index scan: each step asks the column's index of open cases for the next value
    above the last, so a few values among 100,000 open cases cost a few probes, not a scan."""
    is_open = Case.status.in_(OPEN_STATUSES)
    steps = select(select(func.min(column)).where(is_open).scalar_subquery().label("value"))
    values = steps.cte("menu_values", recursive=True)
    following = select(func.min(column)).where(is_open, column > values.c.value)
    values = values.union_all(
        select(following.scalar_subquery()).where(values.c.value.is_not(None))
    )
    found = session.scalars(select(values.c.value).where(values.c.value.is_not(None)))
    return sorted(str(v) for v in found)


def team_names(session: Session) -> list[str]:
    """Every team's name, sorted."""
    return list(session.scalars(select(Team.name).order_by(Team.name)))


def sources(session: Session, *, now: datetime, settings: Settings) -> dict[str, Any]:
    """What `socialcare sources status` shows, and the accounts' recent incidents."""
    return {
        "accounts": ingestion_status(session=session, now=now, settings=settings),
        "incidents": recent_incidents(session=session, now=now),
    }
