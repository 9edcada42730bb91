"""Surge incidents in a period, as the digests and reports show them: when each started and
was detected, how big it grew, how soon the brand first answered it, and how much of its
cluster was answered within the first-response SLA.

A surge's cases are those linked to it and those its posts belong to. Its first answer is the
earliest brand public reply in any of those cases' threads (metrics.post_figures.thread_replies:
acknowledgements count for nothing) made at or after the surge's start. Its SLA share judges
each case as the case figures do (metrics.figures.sla_parts), so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, case, func, select, union
from sqlalchemy.orm import Session

from socialcare.cases.models import Case
from socialcare.db import SecondsBetween, at
from socialcare.metrics.digest_model import SurgeFigures
from socialcare.metrics.figures import Scope, sla_parts
from socialcare.metrics.post_figures import thread_replies
from socialcare.posts.models import Post
from socialcare.surge.models import Surge, SurgeCase, SurgePost

__all__ = ["surge_figures"]


def _members(scope: Scope, surge_ids: list[int]) -> Any:
    """(surge_id, case_id) once per pair: the linked cases and the cases of its posts."""
    now = at(scope.now)
    linked = select(SurgeCase.surge_id.label("surge_id"), SurgeCase.case_id.label("case_id")).where(
        SurgeCase.surge_id.in_(surge_ids)
    )
    of_posts = (
        select(SurgePost.surge_id, Post.case_id)
        .join(Post, Post.id == SurgePost.post_id)
        .where(SurgePost.surge_id.in_(surge_ids), Post.case_id.is_not(None))
        .where(SurgePost.created_at <= now)
    )
    return union(linked, of_posts).subquery("surge_members")


def surge_figures(
    *, session: Session, scope: Scope, sla_seconds: Mapping[str, int]
) -> list[SurgeFigures]:
    """The surges (of scope's account, if any) that started in [scope.start, scope.end) and
    were detected by scope.now, oldest first, with their figures as of scope.now."""
    now = at(scope.now)
    stmt = (
        select(Surge)
        .where(Surge.started_at >= at(scope.start), Surge.started_at < at(scope.end))
        .where(Surge.started_at <= now, Surge.detected_at <= now)
        .order_by(Surge.started_at, Surge.id)
    )
    if scope.account_id is not None:
        stmt = stmt.where(Surge.account_id == scope.account_id)
    surges = list(session.scalars(stmt))
    if not surges:
        return []
    ids = [s.id for s in surges]
    posts: dict[int, int] = dict(
        session.execute(
            select(SurgePost.surge_id, func.count())
            .where(SurgePost.surge_id.in_(ids), SurgePost.created_at <= now)
            .group_by(SurgePost.surge_id)
        ).all()
    )
    members = _members(scope, ids)
    answered, met, missed = sla_parts(scope, sla_seconds)
    judged = {
        row.surge_id: row
        for row in session.execute(
            select(
                members.c.surge_id,
                func.count().label("cases"),
                func.sum(case((answered, 1), else_=0)).label("answered"),
                func.sum(case((met, 1), else_=0)).label("met"),
                func.sum(case((missed, 1), else_=0)).label("missed"),
            )
            .join(Case, Case.id == members.c.case_id)
            .where(Case.opened_at <= now)
            .group_by(members.c.surge_id)
        )
    }
    replies = thread_replies(Scope(scope.start, scope.end, scope.now, scope.account_id))
    first: dict[int, Any] = dict(
        session.execute(
            select(
                members.c.surge_id,
                SecondsBetween(func.min(replies.c.created_at), Surge.started_at),
            )
            .join(Surge, Surge.id == members.c.surge_id)
            .join(
                replies,
                and_(
                    replies.c.case_id == members.c.case_id,
                    replies.c.created_at >= Surge.started_at,
                ),
            )
            .group_by(members.c.surge_id, Surge.started_at)
        ).all()
    )
    return [_figures(s, int(posts.get(s.id, 0)), judged.get(s.id), first.get(s.id)) for s in surges]


def _figures(surge: Surge, posts: int, row: Any, first_answer: Any) -> SurgeFigures:
    met = int(row.met or 0) if row is not None else 0
    missed = int(row.missed or 0) if row is not None else 0
    return SurgeFigures(
        surge_id=surge.id,
        title=surge.title,
        topic=surge.topic,
        status=surge.status,
        started_at=surge.started_at,
        detected_at=surge.detected_at,
        detect_s=max(0.0, (surge.detected_at - surge.started_at).total_seconds()),
        posts=posts,
        cases=int(row.cases) if row is not None else 0,
        answered=int(row.answered or 0) if row is not None else 0,
        first_answer_s=None if first_answer is None else max(0.0, float(first_answer)),
        within_sla=met,
        missed_sla=missed,
        sla_attainment=met / (met + missed) if met + missed else None,
    )
