"""Surge flows: observe scored posts (the score step calls it) and send one alert (a task)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.config import Settings, get_settings
from socialcare.db import after_commit, utcnow
from socialcare.errors import DeliveryError
from socialcare.flows.delivery import Built, Outbox, deliver
from socialcare.metrics.delivery import DeliveryResult
from socialcare.metrics.recipients import Recipient
from socialcare.posts.models import Account, Post, Score
from socialcare.surge import alerts
from socialcare.surge.incidents import record
from socialcare.surge.models import Surge, SurgeAlert, SurgePost
from socialcare.surge.notify import SurgeMessage, alert_notifier_for, samples_of
from socialcare.surge.service import ObservedPost, SurgeUpdate, observe

if TYPE_CHECKING:  # socialcare.flows imports this module for its STEPS
    from socialcare.flows.base import Enqueue

log = logging.getLogger(__name__)
SEND_STEP = "send_surge_alert"


def surge_url(settings: Settings, surge_id: int) -> str | None:
    """The incident's page in the web app, when BASE_URL says where that is."""
    if not settings.base_url:
        return None
    return f"{settings.base_url.rstrip('/')}/surges/{surge_id}"


def build_message(*, session: Session, surge_id: int, settings: Settings) -> SurgeMessage:
    """The alert for a surge as it stands now (count and rate live)."""
    surge = session.get(Surge, surge_id)
    if surge is None:
        raise DeliveryError(f"surge {surge_id} does not exist", permanent=True)
    account = session.get(Account, surge.account_id)
    texts = list(
        session.execute(
            select(Post.text)
            .join(SurgePost, SurgePost.post_id == Post.id)
            .where(SurgePost.surge_id == surge_id)
            .order_by(SurgePost.similarity.desc(), Post.id)
            .limit(3)
        ).scalars()
    )
    return SurgeMessage(
        surge_id=surge.id,
        account=f"{account.platform}:@{account.handle}" if account else f"#{surge.account_id}",
        title=surge.title,
        started_at=surge.started_at,
        detected_at=surge.detected_at,
        post_count=surge.post_count,
        rate_per_hour=surge.rate_per_hour,
        expected_per_hour=surge.expected_per_hour,
        samples=samples_of(texts),
        url=surge_url(settings, surge.id),
    )


def _build(session: Session, settings: Settings, alert: SurgeAlert) -> Built[SurgeMessage]:
    return Built(
        alerts.recipient_of(alert),
        build_message(session=session, surge_id=alert.surge_id, settings=settings),
    )


def _sender(recipient: Recipient, settings: Settings) -> Callable[[SurgeMessage], DeliveryResult]:
    return alert_notifier_for(recipient, settings=settings).send_alert


def _alerted(session: Session, alert: SurgeAlert, result: DeliveryResult, at: datetime) -> None:
    """The incident's timeline notes the alert, in the transaction that marks it sent."""
    record(
        session,
        alert.surge_id,
        "alerted",
        at=at,
        detail={"channel": result.channel, "target": result.target},
    )


ALERTS = Outbox(noun="surge alert", model=SurgeAlert, build=_build, sender=_sender, sent=_alerted)


def send_surge_alert(
    alert_id: int,
    *,
    enqueue: Enqueue,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> str:
    """Claim one alert, send it, record the outcome; returns the alert's state afterwards."""
    return deliver(ALERTS, alert_id, settings=settings or get_settings(), now=now)


def observe_scored(
    *,
    session: Session,
    post_ids: Sequence[int],
    enqueue: Enqueue,
    settings: Settings,
    embeddings: Mapping[int, Any] | None = None,
    now: datetime | None = None,
) -> list[SurgeUpdate]:
    """After scoring, in the score step's transaction: observe the scored customer posts and
    enqueue the alerts of any surge opened, after commit. embeddings: post id -> the scorer's
    embedding; when not given, the shared encoder makes them (one more pass).

    Detection time is the source's clock (the latest observed_at, plus the time since that
    post was ingested): the wall clock for live platforms, the replay's clock for replays."""
    if not post_ids:
        return []
    rows = session.execute(
        select(
            Post.id,
            Post.account_id,
            Post.created_at,
            Score.topic,
            Post.case_id,
            Post.observed_at,
            Post.ingested_at,
        )
        .outerjoin(Score, Score.post_id == Post.id)
        .where(Post.id.in_(list(post_ids)), Post.is_brand.is_(False))
    ).all()
    # A history import (an "instant" feed) is not traffic arriving now: no surge, no alert.
    history = {
        a.id
        for a in session.execute(
            select(Account).where(Account.id.in_({r.account_id for r in rows}))
        ).scalars()
        if (a.config or {}).get("instant")
    }
    rows = [r for r in rows if r.account_id not in history]
    if not rows:
        return []
    if embeddings is None:
        embeddings = embeddings_of(
            session=session, post_ids=[r.id for r in rows], settings=settings
        )
    wall = utcnow()
    clock = now or max(r.observed_at + (wall - r.ingested_at) for r in rows)
    posts = [
        ObservedPost(
            r.id, r.account_id, r.created_at, embeddings[r.id], r.topic or "other", r.case_id
        )
        for r in rows
        if r.id in embeddings
    ]
    updates = observe(session=session, posts=posts, settings=settings, now=clock)
    for update in updates:
        if update.kind == "opened":
            _log_opened(session, update.surge_id)
    alert_ids = [a for update in updates for a in update.alert_ids]

    def send_alerts() -> None:
        for alert_id in alert_ids:
            enqueue(SEND_STEP, alert_id)

    if alert_ids:
        after_commit(session, send_alerts)
    return updates


def _log_opened(session: Session, surge_id: int) -> None:
    """The log's line for a new surge (leads with alert recipients get Slack or email too)."""
    surge = session.get(Surge, surge_id)
    if surge is None:
        return
    log.warning(
        "surge %d opened: %r, %d posts since %s (%.0f an hour, usual %.1f); /surges/%d",
        surge.id,
        surge.title,
        surge.post_count,
        surge.started_at.isoformat(timespec="seconds"),
        surge.rate_per_hour,
        surge.expected_per_hour,
        surge.id,
    )


def embeddings_of(
    *, session: Session, post_ids: Sequence[int], settings: Settings
) -> dict[int, Any]:
    """The shared encoder's embeddings of stored posts (for a scorer that hands none over)."""
    from socialcare.scoring.encoder import get_encoder

    rows = session.execute(select(Post.id, Post.text).where(Post.id.in_(list(post_ids)))).all()
    if not rows:
        return {}
    encoder = get_encoder(settings.encoder_model, settings.scoring_quantize)
    vectors = encoder.encode([r.text for r in rows]).numpy()
    return {int(r.id): vectors[i] for i, r in enumerate(rows)}
