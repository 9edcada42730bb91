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

from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.db import insert_for
from socialcare.metrics import outbound
from socialcare.metrics.delivery import DeliveryResult
from socialcare.metrics.recipients import Recipient
from socialcare.metrics.schedule import recipient_key
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
    return outbound.claim(session=session, model=SurgeAlert, row_id=alert_id, now=now)


def record_sent(*, session: Session, alert_id: int, result: DeliveryResult, now: datetime) -> None:
    outbound.record_sent(session=session, model=SurgeAlert, row_id=alert_id, result=result, now=now)


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
    return outbound.record_failure(
        session=session,
        model=SurgeAlert,
        row_id=alert_id,
        error=error,
        max_attempts=max_attempts,
        now=now,
        jitter=jitter,
    )
