"""Next-reply figures per customer post, computed in the database.

The case figures (metrics.figures) measure each case once: its first post to the brand's first
public reply. The public sees posts, not cases: a customer's second post that waits hours is a
public failure even when the first was answered in minutes. Here every customer post of a case
is measured: from its public time to the brand's next public reply in its case's thread (the
earliest brand post made at or after it that answers one of the case's customer posts, or
answers such a reply), whether sent from socialcare or straight on the platform. socialcare's
acknowledgements count for nothing, as they do for first responses.

Posts still waiting are counted as the case figures count unanswered cases: in `unanswered`,
left out of the percentiles, and a miss of the next-reply SLA (per priority of the post's case)
once they have waited past it. One row per customer post in the base query; every aggregate is
SQL, with the case figures' percentile interpolation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import QueryableAttribute, Session, aliased

from socialcare.cases.models import Case, Reply
from socialcare.db import SecondsBetween, at
from socialcare.metrics.digest_model import Figures
from socialcare.metrics.figures import (
    QUANTILES,
    Scope,
    _figures,
    _group,
    _percentile_columns,
    language_label,
)
from socialcare.people.models import Team
from socialcare.posts.models import Account, Post

__all__ = ["post_figures_by", "post_rows", "thread_replies"]


def thread_replies(scope: Scope) -> Subquery:
    """Brand posts that answer a case's thread, one row per (case_id, created_at): replies to
    one of the case's customer posts, and replies to those replies; acknowledgements left out.
    Only those that can be the next reply of a post in scope: made in [start, now]."""
    target, reply, nested = aliased(Post), aliased(Post), aliased(Post)
    start, now = at(scope.start), at(scope.now)
    direct = (
        select(
            target.case_id.label("case_id"),
            reply.id.label("id"),
            reply.platform.label("platform"),
            reply.external_id.label("external_id"),
            reply.created_at.label("created_at"),
            reply.text.label("text"),
            target.id.label("parent_id"),
        )
        .join(
            target,
            and_(
                target.platform == reply.platform,
                target.external_id == reply.in_reply_to_external_id,
            ),
        )
        .where(reply.is_brand.is_(True), target.is_brand.is_(False), target.case_id.is_not(None))
        .where(reply.created_at <= now)
        .subquery()
    )
    second = (
        select(
            direct.c.case_id,
            nested.id,
            nested.platform,
            nested.external_id,
            nested.created_at,
            nested.text,
            direct.c.id,
        )
        .select_from(nested)
        .join(
            direct,
            and_(
                direct.c.platform == nested.platform,
                direct.c.external_id == nested.in_reply_to_external_id,
            ),
        )
        .where(nested.is_brand.is_(True), nested.created_at <= now)
    )
    every = union_all(select(direct), second).subquery()
    ack = exists().where(
        Reply.kind == "ack",
        or_(
            Reply.external_id == every.c.external_id,
            and_(Reply.in_reply_to_post_id == every.c.parent_id, Reply.text == every.c.text),
        ),
    )
    return (
        select(every.c.case_id, every.c.created_at)
        .where(every.c.created_at >= start, ~ack)
        .subquery("thread_replies")
    )


def _allowed(next_reply_sla_seconds: Mapping[str, int]) -> ColumnElement[float]:
    """The post's allowance: its case's priority's next-reply SLA (NULL for an unknown one)."""
    return case(
        *[(Case.priority == p, float(s)) for p, s in next_reply_sla_seconds.items()], else_=None
    )


def post_rows(
    scope: Scope,
    next_reply_sla_seconds: Mapping[str, int],
    group: ColumnElement[Any] | QueryableAttribute[Any] | None = None,
) -> Select[Any]:
    """One row per customer post public in [scope.start, scope.end) and by scope.now, of a
    case (of scope's account, if any): its group, its wait for the next reply (NULL while it
    waits) and whether it met, missed or still waits within its next-reply SLA, as of now."""
    now = at(scope.now)
    replies = thread_replies(scope)
    # Each post's next reply: one grouped join (the thread's replies read once), not a lookup
    # per post.
    posts = (
        select(Post.id.label("post_id"), func.min(replies.c.created_at).label("next_at"))
        .select_from(Post)
        .outerjoin(
            replies,
            and_(replies.c.case_id == Post.case_id, replies.c.created_at >= Post.created_at),
        )
        .where(Post.is_brand.is_(False), Post.case_id.is_not(None))
        .where(Post.created_at >= at(scope.start), Post.created_at < at(scope.end))
        .where(Post.created_at <= now)
        .group_by(Post.id)
        .subquery("waits")
    )
    next_at = posts.c.next_at
    wait = SecondsBetween(next_at, Post.created_at)
    answered = next_at.is_not(None)
    allowed = _allowed(next_reply_sla_seconds)
    met = and_(answered, wait <= allowed)
    missed = or_(
        and_(answered, wait > allowed),
        and_(~answered, SecondsBetween(now, Post.created_at) > allowed),
    )
    stmt = (
        select(
            (group if group is not None else literal("all")).label("g"),
            case((answered, 1), else_=0).label("answered"),
            wait.label("frt"),
            case((met, 1), else_=0).label("met"),
            case((missed, 1), else_=0).label("missed"),
        )
        .select_from(posts)
        .join(Post, Post.id == posts.c.post_id)
        .join(Case, Case.id == Post.case_id)
        .outerjoin(Team, Team.id == Case.team_id)
        .join(Account, Account.id == Case.account_id)
    )
    if scope.account_id is not None:
        stmt = stmt.where(Case.account_id == scope.account_id)
    return stmt


def post_figures_by(
    *,
    session: Session,
    scope: Scope,
    next_reply_sla_seconds: Mapping[str, int],
    dimension: str = "all",
    group: ColumnElement[Any] | None = None,
) -> dict[str, Figures]:
    """Next-reply figures per group of the dimension (or of the group expression) for the
    customer posts in scope; `cases` counts posts. Groups without posts are absent. By
    language, each post is grouped by its own language (a case's by its first post's)."""
    grouping: ColumnElement[Any] | QueryableAttribute[Any] | None = group
    if grouping is None:
        grouping = language_label(Post.language) if dimension == "language" else _group(dimension)
    base = post_rows(scope, next_reply_sla_seconds, grouping).subquery()
    dialect = session.get_bind().dialect.name
    separate, extra = _percentile_columns(dialect, base, "frt", QUANTILES)
    main = select(
        base.c.g,
        func.count().label("cases"),  # the units counted: customer posts
        func.sum(base.c.answered).label("answered"),
        func.avg(base.c.frt).label("mean"),
        func.sum(base.c.met).label("met"),
        func.sum(base.c.missed).label("missed"),
        *extra,
    ).group_by(base.c.g)
    values: dict[str, dict[str, Any]] = {
        str(row.g): dict(row._mapping) for row in session.execute(main)
    }
    if separate is not None:
        for row in session.execute(separate):
            values.setdefault(str(row.g), {}).update(row._mapping)
    return {g: _figures(v) for g, v in values.items() if v.get("cases")}
