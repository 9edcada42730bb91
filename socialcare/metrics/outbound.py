"""The send state of an outbound message row (a digest delivery, a surge alert): claimed once,
sent, retried with backoff, or dead-lettered, whatever the number of workers and redeliveries.

A row model here has the columns id, state (pending | sending | sent | failed), attempts,
next_attempt_at, last_error, sent_at, result_target and message_id.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from socialcare.db import changed_rows
from socialcare.errors import DeliveryError
from socialcare.metrics.delivery import DeliveryResult

SENDING_LEASE = timedelta(seconds=600)
BACKOFF_BASE_SECONDS = 60.0
BACKOFF_CAP_SECONDS = 3600.0


def retry_delay(
    attempts: int, *, retry_after: float | None, jitter: Callable[[], float] = random.random
) -> float:
    """Seconds before the next attempt: what the far side asked for, else exponential backoff
    (60 s, 120 s, 240 s... up to an hour) with up to 25% random jitter, so recipients that failed
    together do not all retry in the same second."""
    if retry_after is not None:
        return min(max(retry_after, 1.0), BACKOFF_CAP_SECONDS)
    base = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** max(0, attempts - 1))
    return min(BACKOFF_CAP_SECONDS, base * (1 + 0.25 * jitter()))


def claim(*, session: Session, model: Any, row_id: int, now: datetime) -> bool:
    """Move a pending row (or one whose claim expired) to sending, counting the attempt; False
    when it is not this caller's to send (sent, failed, or being sent).

    When a row is due is the sweep's business (it enqueues retries at next_attempt_at); the
    claim only makes sure that one message, however often delivered, sends it once."""
    won = changed_rows(
        session.execute(
            update(model)
            .where(
                model.id == row_id,
                (model.state == "pending")
                | ((model.state == "sending") & (model.next_attempt_at < now)),
            )
            .values(
                state="sending",
                attempts=model.attempts + 1,
                next_attempt_at=now + SENDING_LEASE,
            )
            .execution_options(synchronize_session=False)
        )
    )
    return won == 1


def record_sent(
    *, session: Session, model: Any, row_id: int, result: DeliveryResult, now: datetime
) -> None:
    """The far side accepted the message."""
    session.execute(
        update(model)
        .where(model.id == row_id)
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
    model: Any,
    row_id: int,
    error: Exception,
    max_attempts: int,
    now: datetime,
    jitter: Callable[[], float] = random.random,
) -> str:
    """A send failed: pending again after a backoff, or failed (the dead letter) when the error
    is permanent or the attempts are spent; returns the new state."""
    row = session.get(model, row_id, with_for_update=True)
    if row is None or row.state != "sending":
        return str(row.state) if row else "missing"
    permanent = isinstance(error, DeliveryError) and error.permanent
    text = str(error) if isinstance(error, DeliveryError) else f"{type(error).__name__}: {error}"
    row.last_error = text[:1000]
    if permanent or row.attempts >= max_attempts:
        row.state = "failed"
        row.next_attempt_at = None
        if not permanent:
            row.last_error = f"gave up after {row.attempts} attempts: {text}"[:1000]
    else:
        retry_after = error.retry_after if isinstance(error, DeliveryError) else None
        delay = retry_delay(row.attempts, retry_after=retry_after, jitter=jitter)
        row.state = "pending"
        row.next_attempt_at = now + timedelta(seconds=delay)
    return str(row.state)


def overdue(
    *, session: Session, model: Any, now: datetime, grace: timedelta, max_attempts: int
) -> list[int]:
    """For the sweep: due pending rows, leased for a grace period so one sweep enqueues one
    send, and sends whose worker died (claim expired), pending again or failed when their
    attempts are spent. Returns the ids to enqueue."""
    due: list[int] = []
    rows = session.execute(
        select(model)
        .where(model.state.in_(("pending", "sending")), model.next_attempt_at <= now)
        .order_by(model.next_attempt_at)
        .limit(500)
        # A row a send is claiming right now is skipped (PostgreSQL; SQLite's writers queue).
        .with_for_update(skip_locked=True)
    ).scalars()
    for row in rows:
        if row.state == "sending":
            row.last_error = "the send stopped without an outcome (worker lost)"
            if row.attempts >= max_attempts:
                row.state, row.next_attempt_at = "failed", None
                continue
            row.state = "pending"
        row.next_attempt_at = now + grace
        due.append(int(row.id))
    return due
