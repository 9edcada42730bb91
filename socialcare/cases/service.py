"""Cases: posts grouped into a customer's open case, routed, answered, claimed and closed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from socialcare.cases.ack import is_acknowledgement, queue_ack
from socialcare.cases.events import record
from socialcare.cases.models import OPEN_STATUSES, Case
from socialcare.config import Settings
from socialcare.db import utcnow
from socialcare.posts.models import STAGE_INGESTED, STAGE_ROUTED, STAGE_SCORED, Post, Score
from socialcare.routing.models import Team
from socialcare.routing.rules import PRIORITY_ORDER, RouteInput, route
from socialcare.routing.service import sla_due, team_by_name

WORKER = "worker"
MAX_THREAD_DEPTH = 20


def _more_urgent(a: str, b: str) -> str:
    return a if PRIORITY_ORDER.index(a) <= PRIORITY_ORDER.index(b) else b


def _locked(stmt: Select[Case]) -> Select[Case]:
    """Case rows are read to be changed: lock them, so concurrent routings never lose updates
    (SQLite needs no row lock: its transactions already take the write lock at BEGIN)."""
    return stmt.with_for_update().execution_options(populate_existing=True)


def open_case_for(session: Session, *, account_id: int, customer: str) -> Case | None:
    return session.execute(
        _locked(
            select(Case).where(
                Case.account_id == account_id,
                Case.customer_external_id == customer,
                Case.status.in_(OPEN_STATUSES),
            )
        )
    ).scalar_one_or_none()


def _new_case(session: Session, post: Post, score: Score | None, settings: Settings) -> Case:
    priority = score.priority if score else "P4"
    topic = score.topic if score else "other"
    team_name, rule = route(
        RouteInput(
            topic=topic,
            priority=priority,
            urgency=score.urgency if score else 0.0,
            followers=post.author_followers,
            verified=post.author_verified,
        )
    )
    team = team_by_name(session=session, name=team_name)
    now = utcnow()
    case = Case(
        account_id=post.account_id,
        platform=post.platform,
        customer_external_id=post.author_external_id,
        customer_handle=post.author_handle,
        root_post_id=post.id,
        status="queued",
        team_id=team.id,
        priority=priority,
        urgency=score.urgency if score else 0.0,
        topic=topic,
        opened_at=post.created_at,
        detected_at=post.observed_at,
        queued_at=now,
        sla_due_at=sla_due(
            team=team, priority=priority, opened_at=post.created_at, settings=settings
        ),
    )
    session.add(case)
    session.flush()
    record(
        session,
        actor=WORKER,
        kind="case_opened",
        case_id=case.id,
        post_id=post.id,
        team=team.name,
        priority=priority,
        rule=rule,
    )
    queue_ack(session=session, case=case, now=post.observed_at, settings=settings)
    return case


def _attach(
    session: Session, case: Case, post: Post, score: Score | None, settings: Settings
) -> None:
    if score is not None:
        case.priority = _more_urgent(score.priority, case.priority)
        case.urgency = max(case.urgency, score.urgency)
    if post.created_at < case.opened_at:
        # Workers route in parallel: an earlier post can arrive after a later one opened the case.
        case.opened_at = post.created_at
        case.root_post_id = post.id
        case.detected_at = min(case.detected_at, post.observed_at)
    if case.team_id is not None:
        team = session.get(Team, case.team_id)
        if team is not None:
            case.sla_due_at = sla_due(
                team=team, priority=case.priority, opened_at=case.opened_at, settings=settings
            )
    if case.status == "responded" and (
        case.first_response_at is None or post.created_at > case.first_response_at
    ):
        case.status = "queued"
        case.queued_at = utcnow()
    record(session, actor=WORKER, kind="post_attached", case_id=case.id, post_id=post.id)


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
            _locked(select(Case).where(Case.id == post.case_id, Case.status.in_(OPEN_STATUSES)))
        ).scalar_one_or_none()
        if case is None or _more_urgent(priority, case.priority) == case.priority:
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


def route_posts(*, session: Session, post_ids: Sequence[int], settings: Settings) -> list[int]:
    """Put scored customer posts into cases and link brand replies; returns the case ids touched."""
    touched: list[int] = []
    posts = session.execute(
        select(Post).where(Post.id.in_(post_ids)).order_by(Post.created_at, Post.id)
    ).scalars()
    for post in list(posts):
        if post.is_brand and post.stage == STAGE_INGESTED:
            if _awaits_routing(session, post):
                # The post it answers is not routed yet; that routing counts this reply, and
                # the sweep retries this step in case both ran at once and missed each other.
                continue
            case = apply_brand_reply(session=session, brand_post=post)
            post.stage = STAGE_ROUTED
            post.next_step_at = None
            if case is not None:
                touched.append(case.id)
        elif not post.is_brand and post.stage == STAGE_SCORED:
            case = _route_customer_post(session, post, settings)
            touched.append(case.id)
    session.flush()
    return touched


def _route_customer_post(session: Session, post: Post, settings: Settings) -> Case:
    score = session.execute(select(Score).where(Score.post_id == post.id)).scalar_one_or_none()
    case = open_case_for(session, account_id=post.account_id, customer=post.author_external_id)
    if case is None:
        try:
            with session.begin_nested():
                case = _new_case(session, post, score, settings)
        except IntegrityError:
            # Another worker opened this customer's case first: join it.
            case = open_case_for(
                session, account_id=post.account_id, customer=post.author_external_id
            )
            if case is None:
                raise
            _attach(session, case, post, score, settings)
    else:
        _attach(session, case, post, score, settings)
    post.case_id = case.id
    post.stage = STAGE_ROUTED
    post.next_step_at = None
    session.flush()
    # Brand replies stored before this post was routed count now.
    for reply in session.execute(
        select(Post).where(
            Post.platform == post.platform,
            Post.in_reply_to_external_id == post.external_id,
            Post.is_brand.is_(True),
        )
    ).scalars():
        apply_brand_reply(session=session, brand_post=reply)
        reply.stage = STAGE_ROUTED
        reply.next_step_at = None
    return case


def _awaits_routing(session: Session, brand_post: Post) -> bool:
    parent = session.execute(
        select(Post).where(
            Post.platform == brand_post.platform,
            Post.external_id == brand_post.in_reply_to_external_id,
        )
    ).scalar_one_or_none()
    return (
        parent is not None
        and not parent.is_brand
        and parent.case_id is None
        and (parent.stage in (STAGE_INGESTED, STAGE_SCORED))
    )


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
                _locked(select(Case).where(Case.id == parent.case_id))
            ).scalar_one()
        if not parent.is_brand:
            # A customer post not routed yet: its routing will count this reply.
            return None
        parent_id = parent.in_reply_to_external_id
    return None


def apply_brand_reply(*, session: Session, brand_post: Post, via: str = "platform") -> Case | None:
    """Count a public brand reply: it may be its case's first response, and may answer it.
    socialcare's own acknowledgements count for neither."""
    if is_acknowledgement(session, brand_post):
        return None
    case = _case_of_thread(session, brand_post)
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
        record(session, actor=WORKER, kind="answered", case_id=case.id, post_id=brand_post.id)
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
