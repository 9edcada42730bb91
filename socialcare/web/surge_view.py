"""What the surge pages and their JSON show: the incidents, one incident's cases, posts and
timeline (reads only; the actions are socialcare.surge.answer and socialcare.surge.incidents)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from socialcare.cases.models import OPEN_STATUSES, Case
from socialcare.posts.models import Account
from socialcare.surge import answer, incidents
from socialcare.surge.models import Surge, SurgeCase, SurgePost
from socialcare.surge.rate_chart import RateSeries, rate_series

LIST_LIMIT = 200
SAMPLE_POSTS = 10


class SurgeOut(BaseModel):
    id: int
    status: str
    title: str
    account: str
    topic: str
    keywords: list[str]
    started_at: datetime
    detected_at: datetime
    detect_seconds: float
    last_post_at: datetime
    post_count: int
    rate_per_hour: float
    expected_per_hour: float
    cases: int
    answered: int  # cases with a first response
    answered_share: float | None
    acknowledged_at: datetime | None
    answered_at: datetime | None
    resolved_at: datetime | None


class SurgeCaseOut(BaseModel):
    id: int
    status: str
    customer_handle: str
    priority: str
    opened_at: datetime
    first_response_at: datetime | None
    waiting_seconds: float | None  # open and unanswered: since the customer's wait began


class SurgePostOut(BaseModel):
    id: int
    author_handle: str
    text: str
    created_at: datetime
    language: str | None


class SurgeEventOut(BaseModel):
    kind: str
    at: datetime
    actor: str
    detail: dict[str, Any]


class AnswerSettingOut(BaseModel):
    text: str
    after_send: str
    by: str
    at: datetime


class SurgeDetailOut(BaseModel):
    surge: SurgeOut
    cases: list[SurgeCaseOut]
    posts: list[SurgePostOut]
    timeline: list[SurgeEventOut]
    answer: AnswerSettingOut | None


def _accounts(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Account).where(Account.id.in_(ids))).scalars()
    return {a.id: f"{a.platform}:@{a.handle}" for a in rows}


def _counts(session: Session, ids: list[int]) -> dict[int, tuple[int, int]]:
    if not ids:
        return {}
    rows = session.execute(
        select(SurgeCase.surge_id, func.count(), func.count(Case.first_response_at))
        .join(Case, Case.id == SurgeCase.case_id)
        .where(SurgeCase.surge_id.in_(ids))
        .group_by(SurgeCase.surge_id)
    ).all()
    return {int(s): (int(n), int(a)) for s, n, a in rows}


def surge_out(surge: Surge, account: str, counts: tuple[int, int]) -> SurgeOut:
    cases, answered = counts
    return SurgeOut(
        id=surge.id,
        status=surge.status,
        title=surge.title,
        account=account,
        topic=surge.topic,
        keywords=[str(k) for k in surge.keywords],
        started_at=surge.started_at,
        detected_at=surge.detected_at,
        detect_seconds=(surge.detected_at - surge.started_at).total_seconds(),
        last_post_at=surge.last_post_at,
        post_count=surge.post_count,
        rate_per_hour=round(surge.rate_per_hour, 1),
        expected_per_hour=round(surge.expected_per_hour, 2),
        cases=cases,
        answered=answered,
        answered_share=round(answered / cases, 3) if cases else None,
        acknowledged_at=surge.acknowledged_at,
        answered_at=surge.answered_at,
        resolved_at=surge.resolved_at,
    )


def surges(session: Session, *, status: str | None = None) -> list[SurgeOut]:
    """The surges, the latest detected first (at most LIST_LIMIT)."""
    stmt = select(Surge).order_by(Surge.detected_at.desc(), Surge.id.desc()).limit(LIST_LIMIT)
    if status is not None:
        stmt = stmt.where(Surge.status == status)
    rows = list(session.execute(stmt).scalars())
    names = _accounts(session, {s.account_id for s in rows})
    counts = _counts(session, [s.id for s in rows])
    return [
        surge_out(s, names.get(s.account_id, f"#{s.account_id}"), counts.get(s.id, (0, 0)))
        for s in rows
    ]


def detail(session: Session, surge_id: int, *, now: datetime) -> SurgeDetailOut | None:
    """One incident: its figures, cases, a sample of posts, timeline and answer setting."""
    surge = session.get(Surge, surge_id)
    if surge is None:
        return None
    names = _accounts(session, {surge.account_id})
    cases = list(
        session.execute(
            select(Case)
            .join(SurgeCase, SurgeCase.case_id == Case.id)
            .where(SurgeCase.surge_id == surge_id)
            .order_by(Case.opened_at, Case.id)
        ).scalars()
    )
    answered = sum(1 for c in cases if c.first_response_at is not None)
    posts = answer.sample_posts(session=session, surge_id=surge_id, limit=SAMPLE_POSTS)
    chosen = answer.setting(session=session, surge_id=surge_id)
    return SurgeDetailOut(
        surge=surge_out(surge, names.get(surge.account_id, "?"), (len(cases), answered)),
        cases=[_case_out(c, now) for c in cases],
        posts=[
            SurgePostOut(
                id=p.id,
                author_handle=p.author_handle,
                text=p.text,
                created_at=p.created_at,
                language=p.language,
            )
            for p in posts
        ],
        timeline=[
            SurgeEventOut(kind=e.kind, at=e.at, actor=e.actor, detail=e.detail)
            for e in incidents.timeline(session=session, surge_id=surge_id)
        ],
        answer=(
            AnswerSettingOut(
                text=str(chosen["text"]),
                after_send=str(chosen["after_send"]),
                by=str(chosen["by"]),
                at=chosen["at"],
            )
            if chosen
            else None
        ),
    )


def rate(session: Session, surge_id: int, *, now: datetime) -> RateSeries | None:
    """The surge's posts per interval from its start (to now while it is open, to its last post
    once resolved), against the usual count the detector judged it by."""
    surge = session.get(Surge, surge_id)
    if surge is None:
        return None
    times = session.execute(
        select(SurgePost.created_at).where(SurgePost.surge_id == surge_id)
    ).scalars()
    end = surge.last_post_at if surge.status == "resolved" else max(surge.last_post_at, now)
    return rate_series(
        list(times), start=surge.started_at, end=end, usual_per_hour=surge.expected_per_hour
    )


def _case_out(case: Case, now: datetime) -> SurgeCaseOut:
    waiting = None
    if case.status in OPEN_STATUSES and case.status != "responded":
        since = case.waiting_since or case.opened_at
        waiting = max(0.0, (now - since).total_seconds())
    return SurgeCaseOut(
        id=case.id,
        status=case.status,
        customer_handle=case.customer_handle,
        priority=case.priority,
        opened_at=case.opened_at,
        first_response_at=case.first_response_at,
        waiting_seconds=waiting,
    )
