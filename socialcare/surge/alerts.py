"""Surge alerts to leads, once per surge and recipient, as the digests are delivered.

The recipients are the digests' (DIGEST_RECIPIENTS, by Slack and email). Each alert is a row
inserted with insert-or-ignore on (surge, recipient), so however many workers open the surge
it exists once, and a send first claims it with a compare-and-set (pending -> sending), so a
message delivered twice sends once. Retries and give-ups follow metrics.schedule exactly.
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
from socialcare.metrics.recipients import Recipient
from socialcare.metrics.schedule import SENDING_LEASE, recipient_key, retry_delay
from socialcare.surge.models import SurgeAlert


def schedule_alerts(
    *, session: Session, surge_id: int, settings: Settings, now: datetime
) -> list[int]:
    """Create the surge's pending alert for each lead that has none; returns the new ids.
    next_attempt_at leaves them to the send enqueued after commit; the sweep steps in later."""
    created: list[int] = []
    lease = timedelta(seconds=settings.step_grace_seconds)
    for recipient in settings.digest_recipients:
        new_id = session.execute(
            insert_for(session)(SurgeAlert)
            .values(
                surge_id=surge_id,
                recipient=recipient_key(recipient),
                state="pending",
                attempts=0,
                next_attempt_at=now + lease,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["surge_id", "recipient"])
            .returning(SurgeAlert.id)
        ).scalar_one_or_none()
        if new_id is not None:
            created.append(int(new_id))
    return created


def recipient_of(alert: SurgeAlert) -> Recipient:
    kind, _, address = alert.recipient.partition(":")
    return Recipient(kind=kind, address=address)


def claim_alert(*, session: Session, alert_id: int, now: datetime) -> bool:
    """pending (or sending with an expired claim) -> sending; False when not ours to send."""
    won = changed_rows(
        session.execute(
            update(SurgeAlert)
            .where(
                SurgeAlert.id == alert_id,
                (SurgeAlert.state == "pending")
                | ((SurgeAlert.state == "sending") & (SurgeAlert.next_attempt_at < now)),
            )
            .values(
                state="sending",
                attempts=SurgeAlert.attempts + 1,
                next_attempt_at=now + SENDING_LEASE,
            )
            .execution_options(synchronize_session=False)
        )
    )
    return won == 1


def record_sent(*, session: Session, alert_id: int, result: DeliveryResult, now: datetime) -> None:
    session.execute(
        update(SurgeAlert)
        .where(SurgeAlert.id == alert_id)
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


def record_failure(
    *,
    session: Session,
    alert_id: int,
    error: Exception,
    max_attempts: int,
    now: datetime,
    jitter: Callable[[], float] = random.random,
) -> str:
    """pending again after a backoff, or failed when permanent or out of attempts."""
    alert = session.get(SurgeAlert, alert_id, with_for_update=True)
    if alert is None or alert.state != "sending":
        return alert.state if alert else "missing"
    permanent = isinstance(error, DeliveryError) and error.permanent
    text = str(error) if isinstance(error, DeliveryError) else f"{type(error).__name__}: {error}"
    alert.last_error = text[:1000]
    if permanent or alert.attempts >= max_attempts:
        alert.state = "failed"
        alert.next_attempt_at = None
        if not permanent:
            alert.last_error = f"gave up after {alert.attempts} attempts: {text}"[:1000]
    else:
        retry_after = error.retry_after if isinstance(error, DeliveryError) else None
        delay = retry_delay(alert.attempts, retry_after=retry_after, jitter=jitter)
        alert.state = "pending"
        alert.next_attempt_at = now + timedelta(seconds=delay)
    return alert.state


def overdue_alerts(
    *, session: Session, now: datetime, grace: timedelta, max_attempts: int
) -> list[int]:
    """For the sweep: due pending alerts and sends whose worker died; returns ids to enqueue."""
    due: list[int] = []
    rows = session.execute(
        select(SurgeAlert)
        .where(SurgeAlert.state.in_(("pending", "sending")), SurgeAlert.next_attempt_at <= now)
        .order_by(SurgeAlert.next_attempt_at)
        .limit(500)
        .with_for_update(skip_locked=True)
    ).scalars()
    for alert in rows:
        if alert.state == "sending":
            alert.last_error = "the send stopped without an outcome (worker lost)"
            if alert.attempts >= max_attempts:
                alert.state, alert.next_attempt_at = "failed", None
                continue
            alert.state = "pending"
        alert.next_attempt_at = now + grace
        due.append(alert.id)
    return due
