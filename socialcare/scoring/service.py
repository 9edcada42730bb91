"""Scoring stored posts in batches: sentiment from the model, urgency from the formula."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from socialcare.config import Settings
from socialcare.db import utcnow
from socialcare.posts.models import STAGE_INGESTED, STAGE_SCORED, Post, Score
from socialcare.routing.rules import PRIORITY_ORDER
from socialcare.scoring.topics import topic_of
from socialcare.scoring.urgency import UrgencyInput, priority_for, rescore, urgency

if TYPE_CHECKING:
    from socialcare.scoring.scorer import PostScores, Scorer


def claim_waiting(
    *, session: Session, post_ids: Sequence[int], limit: int | None = None
) -> list[Post]:
    """The given customer posts still waiting for scoring, then (up to limit in all) the other
    waiting ones that have waited longest, locked for this transaction.

    Two workers never score one post twice, nor spend the model on it twice: on PostgreSQL each
    claims its rows with FOR UPDATE SKIP LOCKED and holds them until it commits, so the other
    passes over them (and, once committed, no longer sees them as waiting); on SQLite the
    transaction holds the database's write lock from its first statement (BEGIN IMMEDIATE), so
    the second worker reads only after the first committed. The CAS in score_claimed stays as
    the last word."""
    waiting = (Post.stage == STAGE_INGESTED, Post.is_brand.is_(False))
    own = list(
        session.execute(
            select(Post)
            .where(Post.id.in_(set(post_ids)), *waiting)
            .order_by(Post.id)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    room = (limit or 0) - len(own)
    if room <= 0:
        return own
    # next_step_at is the ingest time plus the grace (ix_posts_stage_due serves this order).
    others = session.execute(
        select(Post)
        .where(*waiting, Post.id.not_in([p.id for p in own]))
        .order_by(Post.next_step_at, Post.id)
        .limit(room)
        .with_for_update(skip_locked=True)
    ).scalars()
    return [*own, *others]


def prior_unanswered(session: Session, posts: Sequence[Post]) -> dict[int, int]:
    """Per post: its author's earlier posts to the same account that no brand post answers
    (one grouped query for the whole batch; posts with none are left out)."""
    if not posts:
        return {}
    earlier = aliased(Post)
    reply = aliased(Post)
    answered = (
        select(reply.id)
        .where(
            reply.platform == earlier.platform,
            reply.is_brand.is_(True),
            reply.in_reply_to_external_id == earlier.external_id,
        )
        .exists()
    )
    stmt = (
        select(Post.id, func.count(earlier.id))
        .join(
            earlier,
            and_(
                earlier.account_id == Post.account_id,
                earlier.author_external_id == Post.author_external_id,
                earlier.created_at < Post.created_at,
                earlier.is_brand.is_(False),
            ),
        )
        .where(Post.id.in_([p.id for p in posts]), ~answered)
        .group_by(Post.id)
    )
    return {post_id: int(n) for post_id, n in session.execute(stmt)}


def score_claimed(
    *,
    session: Session,
    posts: Sequence[Post],
    scorer: Scorer,
    settings: Settings,
    embeddings: dict[int, Any] | None = None,
) -> list[int]:
    """Score claimed posts: the model in batches of SCORE_BATCH_SIZE, then one compare-and-set
    UPDATE for all of them, one grouped count and one insert of the Score rows; returns the ids
    scored now (those another worker scored meanwhile are left out). embeddings, when given, is
    filled with each scored post's sentence embedding from the same pass (for surge detection)."""
    results = run_scorer(posts, scorer, settings, embeddings=embeddings is not None)
    return store_scores(
        session=session,
        posts=posts,
        results=results,
        scorer=scorer,
        settings=settings,
        embeddings=embeddings,
    )


def run_scorer(
    posts: Sequence[Post], scorer: Scorer, settings: Settings, *, embeddings: bool = False
) -> list[PostScores]:
    """The model over the posts' texts in batches of SCORE_BATCH_SIZE (no database work)."""
    results: list[PostScores] = []
    for start in range(0, len(posts), settings.score_batch_size):
        chunk = posts[start : start + settings.score_batch_size]
        results.extend(scorer.score([p.text for p in chunk], embeddings=embeddings))
    return results


def store_scores(
    *,
    session: Session,
    posts: Sequence[Post],
    results: Sequence[PostScores],
    scorer: Scorer,
    settings: Settings,
    embeddings: dict[int, Any] | None = None,
) -> list[int]:
    """The scores of posts the model has scored: one compare-and-set UPDATE (a post another
    worker stored meanwhile is left out), one grouped count and one insert; returns the ids
    stored now (embeddings: see score_claimed)."""
    if not posts:
        return []
    advanced = set(
        session.execute(
            update(Post)
            .where(Post.id.in_([p.id for p in posts]), Post.stage == STAGE_INGESTED)
            .values(stage=STAGE_SCORED, next_step_at=utcnow(), attempts=0)
            .returning(Post.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    won = [(p, r) for p, r in zip(posts, results, strict=True) if p.id in advanced]
    prior = prior_unanswered(session, [p for p, _ in won])
    reference_sla = float(settings.sla_seconds["P2"])
    rows = [
        _score_row(post, result, prior.get(post.id, 0), scorer, settings, reference_sla)
        for post, result in won
    ]
    if rows:
        session.execute(insert(Score), rows)
    if embeddings is not None:
        embeddings.update((p.id, r.embedding) for p, r in won if r.embedding is not None)
    return [p.id for p, _ in won]


def _score_row(
    post: Post,
    result: PostScores,
    prior: int,
    scorer: Scorer,
    settings: Settings,
    reference_sla: float,
) -> dict[str, Any]:
    probs, complaint = result.sentiment, result.complaint
    topic = topic_of(post.text)
    urgent = urgency(
        UrgencyInput(
            negative=probs["negative"],
            topic=topic,
            complaint=complaint,
            complaint_source=f"p(complaint)={complaint:.2f} ({scorer.complaint_name})",
            followers=post.author_followers,
            verified=post.author_verified,
            metrics=post.metrics or {},
            engagement_per_hour=post.engagement_per_hour,
            prior_unanswered=prior,
            waited_seconds=(post.observed_at - post.created_at).total_seconds(),
            reference_sla_seconds=reference_sla,
        )
    )
    return {
        "post_id": post.id,
        "sentiment": max(probs, key=lambda k: probs[k]),
        "probabilities": {k: round(v, 5) for k, v in probs.items()},
        "urgency": urgent.score,
        "priority": priority_for(urgent.score, settings.urgency_thresholds),
        "topic": topic,
        "reasons": urgent.reasons,
        "model": scorer.sentiment_name,
        "created_at": utcnow(),
    }


def score_posts(
    *,
    session: Session,
    post_ids: Sequence[int],
    scorer: Scorer,
    settings: Settings,
    limit: int | None = None,
    embeddings: dict[int, Any] | None = None,
) -> list[int]:
    """Claim the given posts still waiting (and with limit, other waiting posts up to limit in
    all), score them and return the ids scored now (embeddings: see score_claimed)."""
    posts = claim_waiting(session=session, post_ids=post_ids, limit=limit)
    return score_claimed(
        session=session, posts=posts, scorer=scorer, settings=settings, embeddings=embeddings
    )


def refresh_urgency(
    *, session: Session, post_ids: Sequence[int], settings: Settings
) -> list[tuple[int, str]]:
    """Recompute the urgency of scored posts seen again with a new audience or engagement;
    returns (post id, new priority) for those whose priority rose."""
    rows = session.execute(
        select(Post, Score).join(Score, Score.post_id == Post.id).where(Post.id.in_(post_ids))
    ).all()
    risen: list[tuple[int, str]] = []
    for post, score in rows:
        result = rescore(
            list(score.reasons),
            topic=score.topic,
            followers=post.author_followers,
            verified=post.author_verified,
            metrics=post.metrics or {},
            engagement_per_hour=post.engagement_per_hour,
        )
        priority = priority_for(result.score, settings.urgency_thresholds)
        if PRIORITY_ORDER.index(priority) < PRIORITY_ORDER.index(score.priority):
            risen.append((post.id, priority))
        score.urgency, score.reasons, score.priority = result.score, result.reasons, priority
    session.flush()
    return risen
