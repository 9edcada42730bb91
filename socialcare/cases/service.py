"""Cases: posts grouped into a customer's open case, routed, answered, claimed and closed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from socialcare.cases.ack import is_acknowledgement, queue_ack
from socialcare.cases.events import WORKER, record
from socialcare.cases.locks import lock_cases, lock_customer_keys, lock_posts, locked, parents_of
from socialcare.cases.models import OPEN_STATUSES, Case
from socialcare.config import Settings, get_settings
from socialcare.db import utcnow
from socialcare.people.models import Team
from socialcare.posts.models import STAGE_INGESTED, STAGE_ROUTED, STAGE_SCORED, Post, Score
from socialcare.routing.rules import PRIORITY_ORDER, RouteInput
from socialcare.routing.service import choose_team, sla_due

MAX_THREAD_DEPTH = 20


def _more_urgent(a: str, b: str) -> str:
    return a if PRIORITY_ORDER.index(a) <= PRIORITY_ORDER.index(b) else b


def _new_case(
    session: Session, post: Post, score: Score | None, settings: Settings, teams: dict[str, Team]
) -> Case:
    priority = score.priority if score else "P4"
    topic = score.topic if score else "other"
    team, rule = choose_team(
        session=session,
        inp=RouteInput(
            topic=topic,
            priority=priority,
            urgency=score.urgency if score else 0.0,
            followers=post.author_followers,
            verified=post.author_verified,
            language=post.language,
        ),
        teams=teams,
    )
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
        waiting_since=post.created_at,
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
        # The customer wrote again after the brand's reply: this post's wait, not the case's
        # age, decides its place in the queue, against the next-reply SLA.
        case.status = "queued"
        case.queued_at = utcnow()
        _waits_since(case, post.created_at, settings)
    elif (case.waiting_since is None or post.created_at < case.waiting_since) and (
        case.first_response_at is None or post.created_at > case.first_response_at
    ):
        _waits_since(case, post.created_at, settings)  # an earlier post, routed late
    record(session, actor=WORKER, kind="post_attached", case_id=case.id, post_id=post.id)


def _waits_since(case: Case, since: datetime, settings: Settings) -> None:
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
    """Put scored customer posts into cases and link brand replies, in the session's one
    transaction, after taking every lock it needs in one global order (cases.locks); returns
    the case ids touched, once per post routed."""
    batch = set(post_ids)
    posts = lock_posts(session, batch)
    customers = [p for p in posts if p.id in batch and not p.is_brand and p.stage == STAGE_SCORED]
    brands = [p for p in posts if p.id in batch and p.is_brand and p.stage == STAGE_INGESTED]
    if not customers and not brands:
        return []
    keys = sorted({(p.account_id, p.author_external_id) for p in customers})
    lock_customer_keys(session, keys)
    parents = parents_of(session, brands)
    open_cases = lock_cases(
        session, keys, {p.case_id for p in parents.values() if p.case_id is not None}
    )
    scores = {
        s.post_id: s
        for s in session.execute(
            select(Score).where(Score.post_id.in_([p.id for p in customers]))
        ).scalars()
    }
    # Held for the batch: the session's identity map keeps only objects referenced elsewhere.
    teams = {t.name: t for t in session.execute(select(Team)).scalars()}
    replies: dict[tuple[str, str], list[Post]] = {}
    for p in posts:
        if p.is_brand and p.in_reply_to_external_id:
            replies.setdefault((p.platform, p.in_reply_to_external_id), []).append(p)
    touched: list[int] = []
    for post in sorted([*customers, *brands], key=lambda p: (p.created_at, p.id)):
        if post.is_brand:
            if post.stage != STAGE_INGESTED:
                continue  # a customer post of this batch counted it already
            if _awaits_routing(parents.get(post.id)):
                # The post it answers is not routed yet; that routing counts this reply, and
                # the sweep retries this step in case both ran at once and missed each other.
                continue
            case = apply_brand_reply(session=session, brand_post=post, settings=settings)
            _mark_routed(post)
            if case is not None:
                touched.append(case.id)
            continue
        key = (post.account_id, post.author_external_id)
        case = _route_customer_post(
            session, post, open_cases.get(key), scores.get(post.id), settings, teams
        )
        open_cases[key] = case
        touched.append(case.id)
        # Brand replies stored before this post was routed count now.
        for reply in replies.get((post.platform, post.external_id), []):
            apply_brand_reply(session=session, brand_post=reply, case=case, settings=settings)
            _mark_routed(reply)
    session.flush()
    return touched


def _mark_routed(post: Post) -> None:
    post.stage = STAGE_ROUTED
    post.next_step_at = None


def _route_customer_post(
    session: Session,
    post: Post,
    case: Case | None,
    score: Score | None,
    settings: Settings,
    teams: dict[str, Team],
) -> Case:
    """Attach the post to its customer's open case (locked by the caller), or open one."""
    if case is not None and case.status in OPEN_STATUSES:
        _attach(session, case, post, score, settings)
    else:
        # The customer's lock (or SQLite's write lock) makes this the only routing that can
        # open their case now; a unique violation still rolls the batch back to be retried.
        case = _new_case(session, post, score, settings, teams)
    post.case_id = case.id
    _mark_routed(post)
    return case


def _awaits_routing(parent: Post | None) -> bool:
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
            _waits_since(case, after, settings or get_settings())
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
