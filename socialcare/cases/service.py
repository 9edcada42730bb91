"""Case state: a brand reply counted as its case's first response or answer, the customer's
current wait, a case raised when its posts gain audience, a case's thread. The route step that
puts posts into cases is routing/route.py; claims and closes are cases/work.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from socialcare.cases.ack import is_acknowledgement
from socialcare.cases.events import WORKER, record
from socialcare.cases.locks import locked
from socialcare.cases.models import OPEN_STATUSES, Case
from socialcare.config import Settings, get_settings
from socialcare.people.models import Team
from socialcare.posts.models import Post
from socialcare.routing.rules import more_urgent
from socialcare.routing.service import sla_due

MAX_THREAD_DEPTH = 20


def waits_since(case: Case, since: datetime, settings: Settings) -> None:
    """The customer's current wait began at since: before any brand reply, against the
    first-response SLA (sla_due_at); after one, against the next-reply SLA."""
    case.waiting_since = since
    if case.first_response_at is not None:
        seconds = settings.next_reply_sla_seconds.get(case.priority)
        case.reply_due_at = None if seconds is None else since + timedelta(seconds=seconds)


def raise_for_visibility(
    *, session: Session, risen: Sequence[tuple[int, str]], settings: Settings
) -> list[int]:
    """Open cases whose posts gained audience or engagement rise to the posts' new priority
    (never lower); returns the case ids raised."""
    raised: list[int] = []
    for post_id, priority in risen:
        post = session.get(Post, post_id)
        if post is None or post.case_id is None:
            continue  # not routed yet: routing reads the refreshed score
        case = session.execute(
            locked(select(Case).where(Case.id == post.case_id, Case.status.in_(OPEN_STATUSES)))
        ).scalar_one_or_none()
        if case is None or more_urgent(priority, case.priority) == case.priority:
            continue
        previous, case.priority = case.priority, priority
        if post.score is not None:
            case.urgency = max(case.urgency, post.score.urgency)
        team = session.get(Team, case.team_id) if case.team_id is not None else None
        if team is not None:
            case.sla_due_at = sla_due(
                team=team, priority=priority, opened_at=case.opened_at, settings=settings
            )
        record(
            session,
            actor=WORKER,
            kind="priority_raised",
            case_id=case.id,
            post_id=post_id,
            priority=priority,
            previous=previous,
            reason="audience or engagement grew",
        )
        raised.append(case.id)
    return raised


def _case_of_thread(session: Session, brand_post: Post) -> Case | None:
    """The case of the customer post this reply answers, up through the brand's own posts."""
    parent_id = brand_post.in_reply_to_external_id
    for _ in range(MAX_THREAD_DEPTH):
        if not parent_id:
            return None
        parent = session.execute(
            select(Post).where(Post.platform == brand_post.platform, Post.external_id == parent_id)
        ).scalar_one_or_none()
        if parent is None:
            return None
        if parent.case_id is not None:
            return session.execute(
                locked(select(Case).where(Case.id == parent.case_id))
            ).scalar_one()
        if not parent.is_brand:
            # A customer post not routed yet: its routing will count this reply.
            return None
        parent_id = parent.in_reply_to_external_id
    return None


def apply_brand_reply(
    *,
    session: Session,
    brand_post: Post,
    via: str = "platform",
    case: Case | None = None,
    settings: Settings | None = None,
) -> Case | None:
    """Count a public brand reply: it may be its case's first response, and may answer it.
    socialcare's own acknowledgements count for neither. case: the reply's case when the caller
    knows it (locked), else found up the thread."""
    if is_acknowledgement(session, brand_post):
        return None
    case = case or _case_of_thread(session, brand_post)
    if case is None:
        return None
    at = brand_post.created_at
    if case.first_response_at is None or at < case.first_response_at:
        if case.first_response_at is None:
            case.first_response_via = via
        case.first_response_at = at
        case.first_response_post_id = brand_post.id
        record(
            session,
            actor=WORKER,
            kind="first_response",
            case_id=case.id,
            post_id=brand_post.id,
            via=via,
            at=at.isoformat(),
        )
    latest_customer = session.execute(
        select(func.max(Post.created_at)).where(Post.case_id == case.id, Post.is_brand.is_(False))
    ).scalar_one()
    if case.status in ("new", "queued", "claimed") and (
        latest_customer is None or at >= latest_customer
    ):
        case.status = "responded"
        case.reply_due_at = None
        record(session, actor=WORKER, kind="answered", case_id=case.id, post_id=brand_post.id)
    elif case.waiting_since is None or case.waiting_since <= at:
        # Posts the customer wrote after this reply still wait: from the first of them.
        after = session.execute(
            select(func.min(Post.created_at)).where(
                Post.case_id == case.id, Post.is_brand.is_(False), Post.created_at > at
            )
        ).scalar_one()
        if after is not None:
            waits_since(case, after, settings or get_settings())
    return case


def case_posts(*, session: Session, case_id: int) -> list[Post]:
    """Every post of a case's thread in public-time order: the customer's and the brand's."""
    own = list(session.execute(select(Post).where(Post.case_id == case_id)).scalars())
    ids = [p.external_id for p in own]
    platform = own[0].platform if own else ""
    replies = session.execute(
        select(Post).where(
            Post.platform == platform,
            Post.is_brand.is_(True),
            Post.in_reply_to_external_id.in_(ids),
        )
    ).scalars()
    merged = {p.id: p for p in [*own, *replies]}
    return sorted(merged.values(), key=lambda p: (p.created_at, p.id))


def latest_customer_post(*, session: Session, case_id: int) -> Post | None:
    return session.execute(
        select(Post)
        .where(Post.case_id == case_id, Post.is_brand.is_(False))
        .order_by(Post.created_at.desc(), Post.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def first_response_seconds(case: Case) -> float | None:
    if case.first_response_at is None:
        return None
    return (case.first_response_at - case.opened_at).total_seconds()


def is_overdue(case: Case, now: datetime) -> bool:
    return case.first_response_at is None and case.sla_due_at is not None and case.sla_due_at < now
