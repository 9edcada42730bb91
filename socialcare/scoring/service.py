"""Scoring stored posts in batches: sentiment from the model, urgency from the formula."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.db import changed_rows, utcnow
from socialcare.posts.models import STAGE_INGESTED, STAGE_SCORED, Post, Score
from socialcare.routing.rules import PRIORITY_ORDER
from socialcare.scoring.base import SentimentModel
from socialcare.scoring.topics import topic_of
from socialcare.scoring.urgency import UrgencyInput, priority_for, rescore, urgency


class ComplaintScorer(Protocol):
    """p(complaint) for a batch of texts (scoring.complaint.ComplaintModel or a test double)."""

    name: str

    def predict(self, texts: Sequence[str]) -> list[float]: ...


def _prior_unanswered(session: Session, post: Post) -> int:
    """The author's earlier posts to this account that no brand post answers."""
    answered = select(Post.in_reply_to_external_id).where(
        Post.platform == post.platform,
        Post.is_brand.is_(True),
        Post.in_reply_to_external_id.is_not(None),
    )
    stmt = select(func.count()).where(
        Post.account_id == post.account_id,
        Post.author_external_id == post.author_external_id,
        Post.is_brand.is_(False),
        Post.created_at < post.created_at,
        Post.external_id.not_in(answered),
    )
    return int(session.execute(stmt).scalar_one())


def score_posts(
    *,
    session: Session,
    post_ids: Sequence[int],
    model: SentimentModel,
    complaint_model: ComplaintScorer,
    settings: Settings,
) -> list[int]:
    """Score the posts still waiting for it (one batch per model); returns the ids scored now."""
    posts = list(
        session.execute(
            select(Post)
            .where(Post.id.in_(post_ids), Post.stage == STAGE_INGESTED, Post.is_brand.is_(False))
            .order_by(Post.id)
        ).scalars()
    )
    if not posts:
        return []
    texts = [p.text for p in posts]
    probabilities = model.predict(texts)
    complaints = complaint_model.predict(texts)
    reference_sla = float(settings.sla_seconds["P2"])
    scored: list[int] = []
    for post, probs, complaint in zip(posts, probabilities, complaints, strict=True):
        # Compare-and-set: another worker may have scored it since we read it.
        advanced = changed_rows(
            session.execute(
                update(Post)
                .where(Post.id == post.id, Post.stage == STAGE_INGESTED)
                .values(stage=STAGE_SCORED, next_step_at=utcnow(), attempts=0)
                .execution_options(synchronize_session=False)
            )
        )
        if not advanced:
            continue
        topic = topic_of(post.text)
        result = urgency(
            UrgencyInput(
                negative=probs["negative"],
                topic=topic,
                complaint=complaint,
                complaint_source=f"p(complaint)={complaint:.2f} ({complaint_model.name})",
                followers=post.author_followers,
                verified=post.author_verified,
                metrics=post.metrics or {},
                engagement_per_hour=post.engagement_per_hour,
                prior_unanswered=_prior_unanswered(session, post),
                waited_seconds=(post.observed_at - post.created_at).total_seconds(),
                reference_sla_seconds=reference_sla,
            )
        )
        session.add(
            Score(
                post_id=post.id,
                sentiment=max(probs, key=lambda k: probs[k]),
                probabilities={k: round(v, 5) for k, v in probs.items()},
                urgency=result.score,
                priority=priority_for(result.score, settings.urgency_thresholds),
                topic=topic,
                reasons=result.reasons,
                model=model.name,
            )
        )
        scored.append(post.id)
    session.flush()
    return scored


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
