"""Read-only queries behind the web pages: the queue, one case's thread, the team list."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased, object_session

from socialcare.cases.models import OPEN_STATUSES, Case, Event, Reply
from socialcare.config import Settings
from socialcare.ingest.status import ingestion_status, recent_incidents
from socialcare.metrics.digest_format import short_duration
from socialcare.people.models import Agent, Team
from socialcare.posts.models import Account, Post, Score
from socialcare.sources.urls import post_url, web_address

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


@dataclass
class CaseDetail:
    """Everything the case page shows."""

    case: Case
    account: Account | None
    team: str | None
    claimed_by: str | None
    posts: list[Post]
    score: Score | None
    reasons: list[str]
    replies: list[Reply] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    earlier: list[Case] = field(default_factory=list)  # the customer's other cases, newest first
    reply_urls: dict[int, str] = field(default_factory=dict)  # a sent reply's public page
    language: str | None = None  # of the case's first post
    routed: str | None = None  # why the case went to its first team (the case_opened event)


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
    rows = []
    for r in session.execute(stmt):
        answered = r.first_response_at
        label, overdue = sla_state(r.sla_due_at, answered, now)
        if r.reply_due_at is not None:  # the customer wrote again: the next reply's due time
            label, overdue = sla_state(r.reply_due_at, None, now)
            label = f"next reply {label}"
        rows.append(
            QueueRow(
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
                response_seconds=(
                    None if answered is None else (answered - r.opened_at).total_seconds()
                ),
                sla_label=label,
                overdue=overdue,
                language=r.language,
                waiting_since=r.waiting_since,
                reply_due_at=r.reply_due_at,
            )
        )
    return rows, int(total)


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


def reply_link(
    session: Session | None,
    reply: Reply,
    platform: str,
    handle: str | None,
    *,
    stored: Post | None = None,
    server: str = "",
) -> str | None:
    """The public page of a sent reply (see socialcare.sources.urls), or None. handle is the
    brand account's. The reply's stored post (given, or looked up in session, else in the
    reply's own session) supplies what the platform gave back (Mastodon's url, Bluesky's uri).
    A Mastodon reply is a status of the brand's own server: without MASTODON_API_BASE_URL
    (server), that server is the one its uri names."""
    if reply.state != "sent" or not reply.external_id:
        return None
    session = session if session is not None else object_session(reply)
    raw: Any = stored.raw if stored is not None else None
    if stored is None and session is not None and platform in ("mastodon", "bluesky"):
        raw = session.scalar(
            select(Post.raw).where(Post.platform == platform, Post.external_id == reply.external_id)
        )
    raw = raw if isinstance(raw, dict) else None
    if not server and raw is not None and (uri := web_address(raw.get("uri"))):
        parts = urlsplit(uri)
        server = f"{parts.scheme}://{parts.netloc}"
    return post_url(platform, reply.external_id, handle=handle, raw=raw, server=server)


def case_detail(session: Session, case_id: int, *, server: str = "") -> CaseDetail | None:
    """The case, its thread in time order (with brand replies), score, replies and events.
    server is the Mastodon server's address, for a reply whose page was not given."""
    case = session.get(Case, case_id)
    if case is None:
        return None
    own_ids = select(Post.external_id).where(Post.case_id == case_id)
    thread = select(Post).where(
        or_(
            Post.case_id == case_id,
            Post.id == case.root_post_id,
            and_(
                Post.is_brand.is_(True),
                Post.platform == case.platform,
                Post.in_reply_to_external_id.in_(own_ids),
            ),
        )
    )
    posts = list(session.scalars(thread.order_by(Post.created_at, Post.id)))
    score = session.scalar(select(Score).where(Score.post_id == case.root_post_id))
    team = agent = None
    if case.team_id is not None:
        team = session.scalar(select(Team.name).where(Team.id == case.team_id))
    if case.claimed_by is not None:
        agent = session.scalar(select(Agent.handle).where(Agent.id == case.claimed_by))
    replies = session.scalars(
        select(Reply).where(Reply.case_id == case_id).order_by(Reply.created_at, Reply.id)
    )
    events = session.scalars(
        select(Event).where(Event.case_id == case_id).order_by(Event.at, Event.id)
    )
    earlier = session.scalars(
        select(Case)
        .where(
            Case.account_id == case.account_id,
            Case.customer_external_id == case.customer_external_id,
            Case.id != case.id,
        )
        .order_by(Case.opened_at.desc())
        .limit(20)
    )
    account = session.get(Account, case.account_id)
    replies_list = list(replies)
    brand_posts = {p.external_id: p for p in posts if p.is_brand}
    handle = account.handle if account is not None else None
    links = {
        r.id: link
        for r in replies_list
        if (
            link := reply_link(
                session,
                r,
                case.platform,
                handle,
                stored=brand_posts.get(r.external_id or ""),
                server=server,
            )
        )
    }
    events_list = list(events)
    opened = next((e for e in events_list if e.kind == "case_opened"), None)
    routed = str((opened.data or {}).get("rule") or "") if opened is not None else ""
    return CaseDetail(
        language=next((p.language for p in posts if p.id == case.root_post_id), None),
        routed=routed or None,
        earlier=list(earlier),
        case=case,
        account=account,
        team=team,
        claimed_by=agent,
        posts=posts,
        score=score,
        reasons=reason_labels(score.reasons) if score is not None else [],
        replies=replies_list,
        events=events_list,
        reply_urls=links,
    )


def sources(session: Session, *, now: datetime, settings: Settings) -> dict[str, Any]:
    """What `socialcare sources status` shows, and the accounts' recent incidents."""
    return {
        "accounts": ingestion_status(session=session, now=now, settings=settings),
        "incidents": recent_incidents(session=session, now=now),
    }
