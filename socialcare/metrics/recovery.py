"""Did the answer help: the customer's sentiment in the thread after the brand's first public
reply against before it, per team and per agent, computed in SQL.

A post's sentiment is p(positive) - p(negative) from its score, in [-1, 1]. A case counts when
the customer posted both before (or at) and after the first response; its recovery is the mean
after minus the mean before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session

from socialcare.cases.models import Case, Reply
from socialcare.db import at
from socialcare.metrics.digest_model import Recovery
from socialcare.metrics.figures import NO_TEAM, Scope, in_scope
from socialcare.people.models import Agent, Team
from socialcare.posts.models import Post, Score

ON_PLATFORM = "(answered on the platform)"
BY = ("team", "agent")


def _first_agent() -> ColumnElement[Any]:
    """The agent whose reply, sent from here, was the case's first one sent."""
    return (
        select(Agent.handle)
        .join(Reply, Reply.agent_id == Agent.id)
        .where(Reply.case_id == Case.id, Reply.state == "sent")
        .order_by(Reply.sent_at, Reply.id)
        .limit(1)
        .correlate(Case)
        .scalar_subquery()
    )


def sentiment_recovery(*, session: Session, scope: Scope, by: str) -> list[Recovery]:
    """Recovery per team or agent for the cases in scope answered by scope.now; sorted by name."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}, got {by!r}")
    group: ColumnElement[Any] = (
        func.coalesce(Team.name, NO_TEAM)
        if by == "team"
        else func.coalesce(_first_agent(), ON_PLATFORM)
    )
    value = Score.probabilities["positive"].as_float() - Score.probabilities["negative"].as_float()
    answered_at = Case.first_response_at
    before = func.avg(sql_case((Post.created_at <= answered_at, value), else_=None))
    after = func.avg(sql_case((Post.created_at > answered_at, value), else_=None))
    per_case = (
        select(group.label("g"), before.label("before"), after.label("after"))
        .select_from(Case)
        .outerjoin(Team, Team.id == Case.team_id)
        .join(Post, and_(Post.case_id == Case.id, Post.is_brand.is_(False)))
        .join(Score, Score.post_id == Post.id)
        .where(answered_at.is_not(None), answered_at <= at(scope.now))
        .where(Post.created_at <= at(scope.now))
        .group_by(Case.id, group)
    )
    cases = in_scope(per_case, scope).subquery()
    stmt = (
        select(cases.c.g, func.count(), func.avg(cases.c.before), func.avg(cases.c.after))
        .where(cases.c.before.is_not(None), cases.c.after.is_not(None))
        .group_by(cases.c.g)
        .order_by(cases.c.g)
    )
    rows: Sequence[Any] = session.execute(stmt).all()
    return [Recovery(str(g), int(n), float(b), float(a)) for g, n, b, a in rows]
