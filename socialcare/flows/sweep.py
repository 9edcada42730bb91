"""The periodic flows: the sweep that re-enqueues overdue steps, and polls that are due."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from socialcare.cases.models import Reply
from socialcare.cases.work import age_overdue, release_expired_claims
from socialcare.config import Settings, get_settings
from socialcare.db import session_scope, utcnow
from socialcare.flows.base import Enqueue, chunks, later
from socialcare.flows.polling import flag_late_accounts
from socialcare.metrics import outbound
from socialcare.metrics.models import DigestDelivery
from socialcare.posts.models import STAGE_FAILED, STAGE_INGESTED, STAGE_SCORED, Account, Post
from socialcare.surge.models import SurgeAlert


def _overdue_posts(session: Session, settings: Settings, enqueue: Enqueue) -> int:
    from socialcare.flows.pipeline import ROUTE_BATCH

    now = utcnow()
    due = list(
        session.execute(
            select(Post.id, Post.stage, Post.is_brand, Post.attempts)
            .where(Post.stage.in_((STAGE_INGESTED, STAGE_SCORED)), Post.next_step_at < now)
            .order_by(Post.next_step_at)
            .limit(5000)
        )
    )
    to_score: list[int] = []
    to_route: list[int] = []
    for post_id, stage, is_brand, attempts in due:
        if attempts >= settings.max_attempts:
            session.execute(
                update(Post)
                .where(Post.id == post_id)
                .values(stage=STAGE_FAILED, last_error=f"gave up after {attempts} attempts")
            )
            continue
        (to_score if stage == STAGE_INGESTED and not is_brand else to_route).append(post_id)
    # Each re-enqueue waits twice as long as the one before, so a backlog (slow, not failing)
    # gets time to drain before a post is given up: about 2**MAX_ATTEMPTS grace periods.
    for attempts in {row[3] for row in due}:
        wait = settings.step_grace_seconds * 2 ** min(attempts + 1, 12)
        session.execute(
            update(Post)
            .where(
                Post.id.in_([row[0] for row in due if row[3] == attempts]),
                Post.stage.in_((STAGE_INGESTED, STAGE_SCORED)),
            )
            .values(attempts=Post.attempts + 1, next_step_at=now + timedelta(seconds=wait))
        )
    # A scoring task claims up to SCORE_MAX_BATCH waiting posts and routing takes ROUTE_BATCH
    # in one transaction: one message per such batch is enough.
    for chunk in chunks(to_score, settings.score_max_batch):
        later(session, enqueue, "score_posts", chunk)
    for chunk in chunks(to_route, ROUTE_BATCH):
        later(session, enqueue, "route_posts", chunk)
    return len(to_score) + len(to_route)


def _overdue_replies(session: Session, settings: Settings, enqueue: Enqueue) -> int:
    now = utcnow()
    stale = now - timedelta(seconds=settings.step_grace_seconds)
    count = 0
    for reply in session.execute(
        select(Reply).where(Reply.state.in_(("queued", "sending", "unknown")))
    ).scalars():
        due_at = reply.next_attempt_at or reply.created_at
        if reply.state == "queued" and due_at <= now:
            # Lease it for a grace period, so a busy worker pool gets one message, not one a sweep.
            reply.next_attempt_at = now + timedelta(seconds=settings.step_grace_seconds)
            later(session, enqueue, "send_reply", reply.id)
        elif reply.state == "sending" and due_at < stale:
            # Its worker died mid-send: the outcome is unknown, so look before anything else.
            reply.state = "unknown"
            later(session, enqueue, "reconcile_reply", reply.id)
        elif reply.state == "unknown" and due_at < stale:
            reply.next_attempt_at = now
            later(session, enqueue, "reconcile_reply", reply.id)
        else:
            continue
        count += 1
    return count


def _overdue_messages(
    session: Session, settings: Settings, enqueue: Enqueue, model: Any, step: str
) -> int:
    """Digest deliveries or surge alerts due again (metrics.outbound): one send step each."""
    due = outbound.overdue(
        session=session,
        model=model,
        now=utcnow(),
        grace=timedelta(seconds=settings.step_grace_seconds),
        max_attempts=settings.max_attempts,
    )
    for row_id in due:
        later(session, enqueue, step, row_id)
    return len(due)


def sweep(*, enqueue: Enqueue, settings: Settings | None = None) -> dict[str, int]:
    """Re-enqueue every overdue step, return expired claims, age cases past their SLA."""
    settings = settings or get_settings()
    now = utcnow()
    with session_scope(settings) as session:
        return {
            "posts": _overdue_posts(session, settings, enqueue),
            "replies": _overdue_replies(session, settings, enqueue),
            "digests": _overdue_messages(session, settings, enqueue, DigestDelivery, "send_digest"),
            "surge_alerts": _overdue_messages(
                session, settings, enqueue, SurgeAlert, "send_surge_alert"
            ),
            "claims_released": release_expired_claims(session=session, now=now),
            "aged": age_overdue(session=session, now=now),
            "late_accounts": flag_late_accounts(session=session, settings=settings, now=now),
        }


def poll_due(*, enqueue: Enqueue, settings: Settings | None = None) -> int:
    """Enqueue a poll for every polled account whose time has come (leasing it meanwhile)."""
    settings = settings or get_settings()
    now = utcnow()
    with session_scope(settings) as session:
        accounts = session.execute(
            select(Account).where(
                Account.active.is_(True),
                Account.failing.is_(False),
                (Account.next_poll_at.is_(None)) | (Account.next_poll_at <= now),
            )
        ).scalars()
        count = 0
        for account in accounts:
            if not (account.config or {}).get("polled"):
                continue
            account.next_poll_at = now + timedelta(seconds=settings.step_grace_seconds)
            later(session, enqueue, "poll_account", account.id)
            count += 1
    return count
