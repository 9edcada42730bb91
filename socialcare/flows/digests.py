"""Digest flows: create the due deliveries and send each one, once per recipient and period."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import urlencode

from socialcare.config import Settings, get_settings
from socialcare.db import session_scope, utcnow
from socialcare.errors import ConfigError, DeliveryError
from socialcare.flows.base import Enqueue, later
from socialcare.metrics import schedule
from socialcare.metrics.delivery import notifier_for
from socialcare.metrics.digest import build_digest
from socialcare.metrics.digest_model import Digest
from socialcare.metrics.localtime import zone
from socialcare.metrics.models import DigestDelivery

log = logging.getLogger(__name__)


def schedule_digests(
    *, enqueue: Enqueue, settings: Settings | None = None, now: datetime | None = None
) -> int:
    """Create the pending deliveries that are due and enqueue their sends after commit."""
    settings = settings or get_settings()
    with session_scope(settings) as session:
        created = schedule.due_digests(session=session, settings=settings, now=now or utcnow())
        for delivery_id in created:
            later(session, enqueue, "send_digest", delivery_id)
    return len(created)


def report_url(
    settings: Settings,
    *,
    period: str | None = None,
    tz: str | None = None,
    end: datetime | None = None,
    path: str = "",
) -> str | None:
    """The web reports page of a digest's period (path: one of its charts, "/chart/NAME.png"),
    when BASE_URL says where the web app is."""
    if not settings.base_url:
        return None
    params: dict[str, str] = {}
    if period is not None and tz is not None and end is not None:
        last_day = (end.astimezone(zone(tz)) - timedelta(days=1)).date()
        params = {"period": period, "tz": tz, "end": last_day.isoformat()}
    query = f"?{urlencode(params)}" if params else ""
    return f"{settings.base_url.rstrip('/')}/reports{path}{query}"


def _build(settings: Settings, delivery_id: int) -> tuple[DigestDelivery, Digest]:
    with session_scope(settings) as session:
        delivery = session.get(DigestDelivery, delivery_id)
        assert delivery is not None
        # The period ends at period_end, so built "as of" then, the last complete period is
        # exactly the row's, whenever (and however late) the send runs.
        digest = build_digest(
            session=session,
            settings=settings,
            period=delivery.period,
            now=delivery.period_end,
            tz=delivery.tz,
            report_url=report_url(
                settings, period=delivery.period, tz=delivery.tz, end=delivery.period_end
            ),
        )
        session.expunge(delivery)
    if (digest.start, digest.end) != (delivery.period_start, delivery.period_end):
        raise DeliveryError(
            f"the digest built covers {digest.start} to {digest.end}, not the delivery's"
            f" {delivery.period_start} to {delivery.period_end}",
            permanent=True,
        )
    return delivery, digest


def send_digest(
    delivery_id: int,
    *,
    enqueue: Enqueue,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> str:
    """Claim a delivery, build its digest, deliver it; returns the delivery's state afterwards."""
    settings = settings or get_settings()
    with session_scope(settings) as session:
        if not schedule.claim_delivery(
            session=session, delivery_id=delivery_id, now=now or utcnow()
        ):
            current = session.get(DigestDelivery, delivery_id)
            return current.state if current else "missing"
    try:
        delivery, digest = _build(settings, delivery_id)
        recipient = schedule.recipient_of(delivery)
        try:
            notifier = notifier_for(recipient, settings=settings)
        except ConfigError as exc:
            raise DeliveryError(str(exc), permanent=True) from None
        result = notifier.send(digest)
    except Exception as exc:
        with session_scope(settings) as session:
            state = schedule.record_failure(
                session=session,
                delivery_id=delivery_id,
                error=exc,
                max_attempts=settings.max_attempts,
                now=now or utcnow(),
            )
        if state == "failed":
            log.error("digest delivery %s failed for good: %s", delivery_id, exc)
        else:
            log.warning("digest delivery %s will be retried: %s", delivery_id, exc)
        if not isinstance(exc, DeliveryError):
            raise  # a bug or a database error: the task's own retry and logs see it too
        return state
    with session_scope(settings) as session:
        schedule.record_sent(
            session=session, delivery_id=delivery_id, result=result, now=now or utcnow()
        )
    log.info("digest delivery %s sent to %s", delivery_id, result.target)
    return "sent"
