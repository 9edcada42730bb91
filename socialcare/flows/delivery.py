"""One delivery flow for an outbound message row (a digest delivery, a surge alert): claim the
row, build its message, send it, record the outcome, in metrics.outbound's shared send state.

Each kind of row says only what differs (an Outbox): its model, how its message and recipient
are built, how that message goes out, and what else a sent message records. The claim makes one
send of a row, however often its task is delivered; a failure is recorded (retried with backoff
or dead-lettered) and a bug or database error is raised again for the task's own retry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.db import session_scope, utcnow
from socialcare.errors import ConfigError, DeliveryError
from socialcare.metrics import outbound
from socialcare.metrics.delivery import DeliveryResult
from socialcare.metrics.models import DigestDelivery
from socialcare.metrics.recipients import Recipient
from socialcare.surge.models import SurgeAlert

log = logging.getLogger(__name__)

# The row models that carry metrics.outbound's send state.
Row = TypeVar("Row", DigestDelivery, SurgeAlert)
Message = TypeVar("Message")


@dataclass(frozen=True)
class Built(Generic[Message]):
    """A row's message and who it goes to."""

    recipient: Recipient
    message: Message


@dataclass(frozen=True)
class Outbox(Generic[Row, Message]):
    """One kind of outbound row.

    noun: how log lines name a row ("digest delivery"). build: the claimed row's message, in a
    session (DeliveryError when it cannot be built). sender: the way out to a recipient
    (ConfigError when the settings lack it: a permanent failure). sent: what else a sent
    message records, in the transaction that marks the row sent."""

    noun: str
    model: type[Row]
    build: Callable[[Session, Settings, Row], Built[Message]]
    sender: Callable[[Recipient, Settings], Callable[[Message], DeliveryResult]]
    sent: Callable[[Session, Row, DeliveryResult, datetime], None] | None = None


def deliver(
    outbox: Outbox[Row, Message],
    row_id: int,
    *,
    settings: Settings,
    now: datetime | None = None,
) -> str:
    """Claim the row, build and send its message, record the outcome; returns the row's state
    afterwards ("missing" for no such row)."""
    with session_scope(settings) as session:
        if not outbound.claim(
            session=session, model=outbox.model, row_id=row_id, now=now or utcnow()
        ):
            current = session.get(outbox.model, row_id)
            return current.state if current else "missing"
    try:
        with session_scope(settings) as session:
            row = session.get(outbox.model, row_id)
            if row is None:  # deleted since the claim
                raise DeliveryError(f"{outbox.noun} {row_id} no longer exists", permanent=True)
            built = outbox.build(session, settings, row)
        try:
            send = outbox.sender(built.recipient, settings)
        except ConfigError as exc:
            raise DeliveryError(str(exc), permanent=True) from None
        result = send(built.message)
    except Exception as exc:
        return _failed(outbox, row_id, exc, settings=settings, now=now or utcnow())
    with session_scope(settings) as session:
        outbound.record_sent(
            session=session, model=outbox.model, row_id=row_id, result=result, now=now or utcnow()
        )
        if outbox.sent is not None:
            row = session.get(outbox.model, row_id)
            if row is not None:
                outbox.sent(session, row, result, now or utcnow())
    log.info("%s %s sent to %s", outbox.noun, row_id, result.target)
    return "sent"


def _failed(
    outbox: Outbox[Row, Message], row_id: int, exc: Exception, *, settings: Settings, now: datetime
) -> str:
    """Record a failed send; a bug or a database error (not a DeliveryError) is raised again so
    that the task's own retry and logs see it too."""
    with session_scope(settings) as session:
        state = outbound.record_failure(
            session=session,
            model=outbox.model,
            row_id=row_id,
            error=exc,
            max_attempts=settings.max_attempts,
            now=now,
        )
    if state == "failed":
        log.error("%s %s failed for good: %s", outbox.noun, row_id, exc)
    else:
        log.warning("%s %s will be retried: %s", outbox.noun, row_id, exc)
    if not isinstance(exc, DeliveryError):
        raise exc
    return state
