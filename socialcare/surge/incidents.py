"""Surge incidents: open once per surge, add posts, link cases, and the status timeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.db import changed_rows, insert_for
from socialcare.errors import Conflict, NotFound
from socialcare.posts.models import Post
from socialcare.surge import alerts
from socialcare.surge.models import Surge, SurgeCase, SurgeEvent, SurgePost

ACTIVE = ("open", "acknowledged", "answered")
WORKER = "worker"


@dataclass(frozen=True)
class SurgePostRef:
    """A post joining a surge: its id, public time and cosine to the cluster."""

    post_id: int
    created_at: datetime
    similarity: float = 0.0


@dataclass(frozen=True)
class Candidate:
    """What the detector found: a cluster that arrives well above its usual rate."""

    key: str  # "account:cluster:generation"
    account_id: int
    title: str
    topic: str
    keywords: list[str]
    started_at: datetime
    count: int  # distinct authors in the window
    rate_per_hour: float
    expected_per_hour: float
    p_value: float
    posts: Sequence[SurgePostRef] = field(default_factory=tuple)


def record(
    session: Session,
    surge_id: int,
    kind: str,
    *,
    at: datetime,
    actor: str = WORKER,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one event to a surge's timeline."""
    session.add(SurgeEvent(surge_id=surge_id, kind=kind, at=at, actor=actor, detail=detail or {}))


def open_surge(
    *, session: Session, candidate: Candidate, settings: Settings, now: datetime
) -> tuple[Surge, bool, list[int]]:
    """Open the candidate's surge unless its key already has one; returns (surge, opened now,
    the alert ids to send). Insert-or-ignore on the key: two workers open it once."""
    c = candidate
    new_id = session.execute(
        insert_for(session)(Surge)
        .values(
            key=c.key,
            account_id=c.account_id,
            status="open",
            title=c.title[:200],
            topic=c.topic,
            keywords=list(c.keywords),
            started_at=c.started_at,
            detected_at=now,
            last_post_at=max((p.created_at for p in c.posts), default=c.started_at),
            post_count=0,
            rate_per_hour=c.rate_per_hour,
            expected_per_hour=c.expected_per_hour,
            p_value=c.p_value,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(Surge.id)
    ).scalar_one_or_none()
    if new_id is None:
        surge = session.execute(select(Surge).where(Surge.key == c.key)).scalar_one()
        return surge, False, []
    record(
        session,
        int(new_id),
        "opened",
        at=now,
        detail={
            "authors_in_window": c.count,
            "expected_in_window": round(c.expected_per_hour, 3),
            "p_value": c.p_value,
            "started_at": c.started_at.isoformat(),
        },
    )
    add_posts(session=session, surge_id=int(new_id), posts=c.posts, now=now)
    alert_ids = alerts.schedule_alerts(
        session=session, surge_id=int(new_id), settings=settings, now=now
    )
    opened = session.get(Surge, int(new_id), populate_existing=True)
    assert opened is not None
    return opened, True, alert_ids


def add_posts(
    *,
    session: Session,
    surge_id: int,
    posts: Sequence[SurgePostRef],
    now: datetime,
    rate_per_hour: float | None = None,
) -> int:
    """Link posts to a surge (each once) and refresh its live count; returns the count."""
    if posts:
        session.execute(
            insert_for(session)(SurgePost)
            .values(
                [
                    {
                        "surge_id": surge_id,
                        "post_id": p.post_id,
                        "created_at": p.created_at,
                        "similarity": round(float(p.similarity), 4),
                    }
                    for p in posts
                ]
            )
            .on_conflict_do_nothing(index_elements=["surge_id", "post_id"])
        )
    count, last = session.execute(
        select(func.count(), func.max(SurgePost.created_at)).where(SurgePost.surge_id == surge_id)
    ).one()
    values: dict[str, Any] = {"post_count": int(count), "updated_at": now}
    if last is not None:
        values["last_post_at"] = last
    if rate_per_hour is not None:
        values["rate_per_hour"] = rate_per_hour
    session.execute(
        update(Surge)
        .where(Surge.id == surge_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(count)


def link_cases(*, session: Session, surge_ids: Sequence[int], now: datetime) -> list[int]:
    """Link every case that a surge's posts were routed into (each once). Where the surge's
    lead chose "same answer" for later cases, it is queued for the newly linked ones
    (socialcare.surge.answer); returns those replies' ids (the sweep sends them if the caller
    does not enqueue them)."""
    if not surge_ids:
        return []
    rows = (
        select(SurgePost.surge_id, Post.case_id, func.min(SurgePost.created_at))
        .join(Post, Post.id == SurgePost.post_id)
        .where(SurgePost.surge_id.in_(list(surge_ids)), Post.case_id.is_not(None))
        .group_by(SurgePost.surge_id, Post.case_id)
    )
    pairs = [
        {"surge_id": s, "case_id": c, "linked_at": now} for s, c, _ in session.execute(rows).all()
    ]
    if not pairs:
        return []
    linked = session.execute(
        insert_for(session)(SurgeCase)
        .values(pairs)
        .on_conflict_do_nothing(index_elements=["surge_id", "case_id"])
        .returning(SurgeCase.surge_id, SurgeCase.case_id)
    ).all()
    if not linked:
        return []
    from socialcare.surge.answer import answer_linked  # answer builds on this module

    return answer_linked(session=session, pairs=[(int(s), int(c)) for s, c in linked], now=now)


def link_routed(*, session: Session, case_ids: Sequence[int], now: datetime) -> list[int]:
    """After routing: link the routed cases to the active surges their posts joined (a post
    joins its surge when scored, and gets its case when routed, after that), and queue the
    "same answer" where the lead chose it; returns the replies to send."""
    if not case_ids:
        return []
    surge_ids = session.execute(
        select(SurgePost.surge_id)
        .join(Post, Post.id == SurgePost.post_id)
        .join(Surge, Surge.id == SurgePost.surge_id)
        .where(Post.case_id.in_(list(case_ids)), Surge.status.in_(ACTIVE))
        .distinct()
    ).scalars()
    return link_cases(session=session, surge_ids=sorted(surge_ids), now=now)


def _move(
    session: Session,
    surge_id: int,
    *,
    to: str,
    allowed: tuple[str, ...],
    stamp: str,
    actor: str,
    now: datetime,
) -> Surge:
    won = changed_rows(
        session.execute(
            update(Surge)
            .where(Surge.id == surge_id, Surge.status.in_(allowed))
            .values(status=to, updated_at=now, **{stamp: now})
            .execution_options(synchronize_session=False)
        )
    )
    surge = session.get(Surge, surge_id, populate_existing=True)
    if surge is None:
        raise NotFound(f"surge {surge_id} does not exist")
    if not won:
        raise Conflict(f"surge {surge_id} is {surge.status}; it cannot become {to}")
    record(session, surge_id, to, at=now, actor=actor)
    return surge


def acknowledge(*, session: Session, surge_id: int, actor: str, now: datetime) -> Surge:
    """A lead has seen the surge (open -> acknowledged)."""
    return _move(
        session,
        surge_id,
        to="acknowledged",
        allowed=("open",),
        stamp="acknowledged_at",
        actor=actor,
        now=now,
    )


def mark_answered(*, session: Session, surge_id: int, actor: str, now: datetime) -> Surge:
    """The one answer to the cluster went out (open or acknowledged -> answered)."""
    return _move(
        session,
        surge_id,
        to="answered",
        allowed=("open", "acknowledged"),
        stamp="answered_at",
        actor=actor,
        now=now,
    )


def resolve(*, session: Session, surge_id: int, actor: str, now: datetime) -> Surge:
    """The incident is over (from any active status)."""
    return _move(
        session, surge_id, to="resolved", allowed=ACTIVE, stamp="resolved_at", actor=actor, now=now
    )


def timeline(*, session: Session, surge_id: int) -> list[SurgeEvent]:
    """The surge's events, oldest first."""
    return list(
        session.execute(
            select(SurgeEvent)
            .where(SurgeEvent.surge_id == surge_id)
            .order_by(SurgeEvent.at, SurgeEvent.id)
        ).scalars()
    )


def case_ids(*, session: Session, surge_id: int) -> list[int]:
    """The surge's linked cases."""
    return list(
        session.execute(
            select(SurgeCase.case_id)
            .where(SurgeCase.surge_id == surge_id)
            .order_by(SurgeCase.case_id)
        ).scalars()
    )
