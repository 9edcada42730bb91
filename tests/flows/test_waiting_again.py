"""A customer who writes again after the brand's reply: their new post's wait, not the case's age,
decides the case's place in the queue, against the next-reply SLA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from socialcare.cases.models import Case
from socialcare.cases.work import claim_next
from socialcare.config import Settings
from socialcare.posts.models import STAGE_INGESTED, STAGE_SCORED, Post
from socialcare.posts.service import ensure_account, ingest_posts
from socialcare.routing.route import route_posts
from socialcare.routing.service import ensure_default_teams
from socialcare.sources.base import IncomingPost
from socialcare.web.queries import queue_rows
from tests.factories import make_agent

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def _post(
    external_id: str, author: str, minutes: float, *, reply_to: str | None = None, brand=False
) -> IncomingPost:
    return IncomingPost(
        platform="x",
        external_id=external_id,
        author_external_id=author,
        author_handle=author,
        text="@acme my router keeps dropping" if not brand else "@cust Sorry, DM us please",
        created_at=T0 + timedelta(minutes=minutes),
        is_brand=brand,
        in_reply_to_external_id=reply_to,
        brand_handle="acme",
    )


def _route(session: Session, settings: Settings, *posts: IncomingPost) -> None:
    account = ensure_account(session, platform="x", handle="acme", source="x")
    seen = max(p.created_at for p in posts) + timedelta(seconds=5)
    result = ingest_posts(session=session, account=account, posts=list(posts), observed_at=seen)
    ids = [*result.to_score, *result.to_link]
    session.execute(
        update(Post)
        .where(Post.id.in_(result.to_score), Post.stage == STAGE_INGESTED)
        .values(stage=STAGE_SCORED)
    )
    route_posts(session=session, post_ids=ids, settings=settings)
    session.flush()


def _case(session: Session, customer: str) -> Case:
    session.expire_all()
    found = session.query(Case).filter(Case.customer_external_id == customer).one()
    return found


def test_a_customer_who_writes_again_waits_from_their_new_post_against_the_next_reply_sla(
    session: Session, settings: Settings
) -> None:
    ensure_default_teams(session=session)
    _route(session, settings, _post("a1", "ann", 0))
    case = _case(session, "ann")
    assert (case.waiting_since, case.reply_due_at) == (T0, None)

    _route(session, settings, _post("b1", "acme", 10, reply_to="a1", brand=True))
    case = _case(session, "ann")
    assert case.status == "responded" and case.reply_due_at is None

    _route(session, settings, _post("a2", "ann", 300))  # five hours later: still broken
    case = _case(session, "ann")
    again = T0 + timedelta(minutes=300)
    sla = settings.next_reply_sla_seconds[case.priority]
    assert case.status == "queued"
    assert case.waiting_since == again
    assert case.reply_due_at == again + timedelta(seconds=sla)
    assert case.opened_at == T0  # the case itself is as old as ever


def test_the_waiting_post_not_the_cases_age_decides_the_place_in_the_queue(
    session: Session, settings: Settings
) -> None:
    ensure_default_teams(session=session)
    # Ann's case opened first and was answered; Bob has waited since an hour later, unanswered.
    _route(session, settings, _post("a1", "ann", 0), _post("b1", "bob", 60))
    _route(session, settings, _post("r1", "acme", 10, reply_to="a1", brand=True))
    _route(session, settings, _post("a2", "ann", 120))  # Ann writes again at two hours
    ann, bob = _case(session, "ann"), _case(session, "bob")
    session.execute(update(Case).values(priority="P2"))  # the same priority: only waits count
    session.flush()
    now = T0 + timedelta(minutes=130)
    rows, _total = queue_rows(session=session, now=now)
    assert [r.id for r in rows] == [bob.id, ann.id]
    ann_row = rows[1]
    assert ann_row.waiting_since == T0 + timedelta(minutes=120)
    assert ann_row.sla_label.startswith("next reply due in")
    agent = make_agent(session, "ana")
    taken = claim_next(session=session, agent=agent)
    assert taken is not None and taken.id == bob.id


def test_a_reply_that_answers_only_the_earlier_posts_leaves_the_later_one_waiting(
    session: Session, settings: Settings
) -> None:
    ensure_default_teams(session=session)
    _route(session, settings, _post("a1", "ann", 0), _post("a2", "ann", 30))
    # The brand answers the first post after the second was written: the second still waits.
    _route(session, settings, _post("r1", "acme", 20, reply_to="a1", brand=True))
    case = _case(session, "ann")
    assert case.status == "queued"
    assert case.waiting_since == T0 + timedelta(minutes=30)
    sla = settings.next_reply_sla_seconds[case.priority]
    assert case.reply_due_at == T0 + timedelta(minutes=30, seconds=sla)


def test_a_customer_waiting_again_past_the_next_reply_sla_rises_one_priority_once(
    session: Session, settings: Settings
) -> None:
    from socialcare.cases.models import Event
    from socialcare.cases.work import age_overdue

    ensure_default_teams(session=session)
    _route(session, settings, _post("a1", "ann", 0), _post("b1", "bob", 0))
    _route(session, settings, _post("r1", "acme", 10, reply_to="a1", brand=True))
    _route(session, settings, _post("a2", "ann", 300))  # Ann waits again; Bob never answered
    ann, bob = _case(session, "ann"), _case(session, "bob")
    assert ann.queued_at is not None and ann.reply_due_at is not None
    assert ann.waiting_since is not None and bob.sla_due_at is not None
    allowed_ann = ann.reply_due_at - ann.waiting_since  # the next-reply SLA
    allowed_bob = bob.sla_due_at - bob.opened_at  # the first-response SLA
    before = {c.id: c.priority for c in (ann, bob)}
    first = min(ann.queued_at + allowed_ann, bob.queued_at + allowed_bob)
    assert age_overdue(session=session, now=first - timedelta(seconds=1)) == 0
    later = max(ann.queued_at + allowed_ann, bob.queued_at + allowed_bob) + timedelta(seconds=1)
    assert age_overdue(session=session, now=later) == 2
    assert age_overdue(session=session, now=later + timedelta(days=1)) == 0  # once
    session.flush()
    ann, bob = _case(session, "ann"), _case(session, "bob")
    for case in (ann, bob):
        assert case.escalated and case.priority < before[case.id]  # "P3" < "P4": more urgent
    breaches = ("sla_breached", "next_reply_breached")
    kinds = {e.case_id: e.kind for e in session.query(Event).filter(Event.kind.in_(breaches))}
    assert kinds == {ann.id: "next_reply_breached", bob.id: "sla_breached"}
