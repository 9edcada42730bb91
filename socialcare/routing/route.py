"""The route step: scored customer posts into their customer's open case (or a new one, with
its team, priority and SLA), and brand replies counted on the cases they answer. Case state
itself (first responses, waits, threads) is cases/; the rules, teams and SLAs it routes by are
the rest of routing/."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.cases.ack import queue_ack
from socialcare.cases.events import WORKER, record
from socialcare.cases.models import OPEN_STATUSES, Case
from socialcare.cases.service import apply_brand_reply, waits_since
from socialcare.config import Settings
from socialcare.db import utcnow
from socialcare.people.models import Team
from socialcare.posts.models import STAGE_INGESTED, STAGE_ROUTED, STAGE_SCORED, Post, Score
from socialcare.routing.locks import lock_cases, lock_customer_keys, lock_posts, parents_of
from socialcare.routing.rules import RouteInput, more_urgent
from socialcare.routing.service import choose_team, sla_due


def route_posts(*, session: Session, post_ids: Sequence[int], settings: Settings) -> list[int]:
    """Put scored customer posts into cases and link brand replies, in the session's one
    transaction, after taking every lock it needs in one global order (routing.locks); returns
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
        case.priority = more_urgent(score.priority, case.priority)
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
        waits_since(case, post.created_at, settings)
    elif (case.waiting_since is None or post.created_at < case.waiting_since) and (
        case.first_response_at is None or post.created_at > case.first_response_at
    ):
        waits_since(case, post.created_at, settings)  # an earlier post, routed late
    record(session, actor=WORKER, kind="post_attached", case_id=case.id, post_id=post.id)
