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

from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.db import insert_for
from socialcare.metrics import outbound
from socialcare.metrics.delivery import DeliveryResult
from socialcare.metrics.digest import period_bounds
from socialcare.metrics.localtime import zone
from socialcare.metrics.models import DigestDelivery
from socialcare.metrics.recipients import Recipient

# A claim outlives the worker's hard task time limit (300 s), so a send still running is never
# taken over; a claim older than this belongs to a worker that died.


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
    """A pending delivery (or one whose claim expired) to sending; False when it is not this
    caller's to send (metrics.outbound.claim)."""
    return outbound.claim(session=session, model=DigestDelivery, row_id=delivery_id, now=now)


def record_sent(
    *, session: Session, delivery_id: int, result: DeliveryResult, now: datetime
) -> None:
    """The far side accepted the digest."""
    outbound.record_sent(
        session=session, model=DigestDelivery, row_id=delivery_id, result=result, now=now
    )


def record_failure(
    *,
    session: Session,
    delivery_id: int,
    error: Exception,
    max_attempts: int,
    now: datetime,
    jitter: Callable[[], float] = random.random,
) -> str:
    """A send failed: pending again after a backoff, or failed (the dead letter); returns the
    new state (metrics.outbound.record_failure)."""
    return outbound.record_failure(
        session=session,
        model=DigestDelivery,
        row_id=delivery_id,
        error=error,
        max_attempts=max_attempts,
        now=now,
        jitter=jitter,
    )


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
