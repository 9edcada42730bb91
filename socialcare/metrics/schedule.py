"""Scheduled digests: which are due, and each delivery's moves pending -> sending -> sent | failed.

Once per recipient and period: the delivery row is inserted with insert-or-ignore on its unique
key, whoever runs the schedule and however often, and a send first claims the row with a
compare-and-set, so a task delivered twice sends once.

What "delivered" means: a notifier raises DeliveryError only when the far side did not accept
the digest, so a DeliveryError counts as not delivered and is retried (transient) or given up
(permanent, or MAX_ATTEMPTS reached). Two narrow windows remain where a digest can arrive twice:
a timeout after the mail server had in fact accepted the message, and a worker killed (or a
database lost) between the far side's acceptance and the commit of `sent`; such a row is taken
over once its claim expires. Neither can lose a digest silently: it ends `sent` or `failed`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.db import changed_rows, insert_for
from socialcare.errors import DeliveryError
from socialcare.metrics.delivery import DeliveryResult
from socialcare.metrics.digest import period_bounds, zone
from socialcare.metrics.models import DigestDelivery
from socialcare.metrics.recipients import Recipient

# A claim outlives the worker's hard task time limit (300 s), so a send still running is never
# taken over; a claim older than this belongs to a worker that died.
SENDING_LEASE = timedelta(seconds=600)
BACKOFF_BASE_SECONDS = 60.0
BACKOFF_CAP_SECONDS = 3600.0


def recipient_key(recipient: Recipient) -> str:
    """'email:lead@example.com': the recipient part of a delivery's unique key."""
    return f"{recipient.kind}:{recipient.address}"


def recipient_of(delivery: DigestDelivery) -> Recipient:
    """The Recipient a delivery row was scheduled for."""
    kind, _, address = delivery.recipient.partition(":")
    return Recipient(kind=kind, address=address, tz=delivery.tz)


def periods_due(recipient: Recipient, *, periods: tuple[str, ...], now: datetime) -> list[str]:
    """The day always; the week only on the recipient's local Monday (the week just ended)."""
    local = now.astimezone(zone(recipient.tz))
    return [p for p in periods if p == "day" or (p == "week" and local.weekday() == 0)]


def due_digests(
    *, session: Session, settings: Settings, now: datetime, lease: timedelta | None = None
) -> list[int]:
    """Create the pending delivery of each recipient's last complete period that has none yet;
    returns the ids of the rows this call created (none when another caller was first).

    lease: the new rows' next_attempt_at is now + lease, so the sweep leaves them to the send
    enqueued with them and steps in only when that message is lost."""
    lease = lease if lease is not None else timedelta(seconds=settings.step_grace_seconds)
    created: list[int] = []
    for recipient in settings.digest_recipients:
        for period in periods_due(recipient, periods=settings.digest_periods, now=now):
            start, end = period_bounds(period, now=now, tz=recipient.tz)
            new_id = session.execute(
                insert_for(session)(DigestDelivery)
                .values(
                    recipient=recipient_key(recipient),
                    tz=recipient.tz,
                    period=period,
                    period_start=start,
                    period_end=end,
                    state="pending",
                    attempts=0,
                    next_attempt_at=now + lease,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["recipient", "period", "period_start"])
                .returning(DigestDelivery.id)
            ).scalar_one_or_none()
            if new_id is not None:
                created.append(int(new_id))
    return created


def claim_delivery(*, session: Session, delivery_id: int, now: datetime) -> bool:
    """Move a pending delivery (or one whose claim expired) to sending, counting the attempt;
    False when it is not this caller's to send (sent, failed, or being sent).

    When a delivery is due is the sweep's business (it enqueues retries at next_attempt_at);
    the claim only makes sure that one message, however often delivered, sends it once."""
    won = changed_rows(
        session.execute(
            update(DigestDelivery)
            .where(
                DigestDelivery.id == delivery_id,
                (DigestDelivery.state == "pending")
                | ((DigestDelivery.state == "sending") & (DigestDelivery.next_attempt_at < now)),
            )
            .values(
                state="sending",
                attempts=DigestDelivery.attempts + 1,
                next_attempt_at=now + SENDING_LEASE,
            )
            .execution_options(synchronize_session=False)
        )
    )
    return won == 1


def record_sent(
    *, session: Session, delivery_id: int, result: DeliveryResult, now: datetime
) -> None:
    """The far side accepted the digest."""
    session.execute(
        update(DigestDelivery)
        .where(DigestDelivery.id == delivery_id)
        .values(
            state="sent",
            sent_at=now,
            next_attempt_at=None,
            last_error=None,
            result_target=result.target[:512],
            message_id=result.message_id[:255] if result.message_id else None,
        )
        .execution_options(synchronize_session=False)
    )


def retry_delay(
    attempts: int, *, retry_after: float | None, jitter: Callable[[], float] = random.random
) -> float:
    """Seconds before the next attempt: what the far side asked for, else exponential backoff
    (60 s, 120 s, 240 s... up to an hour) with up to 25% random jitter, so recipients that failed
    together do not all retry in the same second."""
    if retry_after is not None:
        return min(max(retry_after, 1.0), BACKOFF_CAP_SECONDS)
    base = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return min(BACKOFF_CAP_SECONDS, base * (1 + 0.25 * jitter()))


def record_failure(
    *,
    session: Session,
    delivery_id: int,
    error: Exception,
    max_attempts: int,
    now: datetime,
    jitter: Callable[[], float] = random.random,
) -> str:
    """A send failed: pending again after a backoff, or failed (the dead letter) when the error
    is permanent or the attempts are spent; returns the new state."""
    delivery = session.get(DigestDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.state != "sending":
        return delivery.state if delivery else "missing"
    permanent = isinstance(error, DeliveryError) and error.permanent
    reason = f"{type(error).__name__}: {error}" if not isinstance(error, DeliveryError) else None
    delivery.last_error = (reason or str(error))[:1000]
    if permanent or delivery.attempts >= max_attempts:
        delivery.state = "failed"
        delivery.next_attempt_at = None
        if not permanent:
            delivery.last_error = (
                f"gave up after {delivery.attempts} attempts: {delivery.last_error}"
            )[:1000]
    else:
        retry_after = error.retry_after if isinstance(error, DeliveryError) else None
        delay = retry_delay(delivery.attempts, retry_after=retry_after, jitter=jitter)
        delivery.state = "pending"
        delivery.next_attempt_at = now + timedelta(seconds=delay)
    return delivery.state


def overdue_deliveries(
    *, session: Session, now: datetime, grace: timedelta, max_attempts: int
) -> list[int]:
    """For the sweep: due pending deliveries, leased for a grace period so one sweep enqueues
    one send, and sends whose worker died (claim expired), pending again or failed when their
    attempts are spent. Returns the ids to enqueue."""
    due: list[int] = []
    rows = session.execute(
        select(DigestDelivery)
        .where(
            DigestDelivery.state.in_(("pending", "sending")),
            DigestDelivery.next_attempt_at <= now,
        )
        .order_by(DigestDelivery.next_attempt_at)
        .limit(500)
        # A row a send is claiming right now is skipped (PostgreSQL; SQLite's writers queue).
        .with_for_update(skip_locked=True)
    ).scalars()
    for delivery in rows:
        if delivery.state == "sending":
            delivery.last_error = "the send stopped without an outcome (worker lost)"
            if delivery.attempts >= max_attempts:
                delivery.state = "failed"
                delivery.next_attempt_at = None
                continue
            delivery.state = "pending"
        delivery.next_attempt_at = now + grace
        due.append(delivery.id)
    return due


def recent_deliveries(*, session: Session, limit: int = 20) -> list[DigestDelivery]:
    """The latest deliveries first (by period, then recipient)."""
    return list(
        session.execute(
            select(DigestDelivery)
            .order_by(
                DigestDelivery.period_start.desc(),
                DigestDelivery.period,
                DigestDelivery.recipient,
            )
            .limit(limit)
        ).scalars()
    )
