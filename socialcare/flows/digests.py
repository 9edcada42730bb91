"""Digest flows: create the due deliveries and send each one, once per recipient and period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from socialcare.config import Settings, get_settings
from socialcare.db import session_scope, utcnow
from socialcare.errors import DeliveryError
from socialcare.flows.base import Enqueue, later
from socialcare.flows.delivery import Built, Outbox, deliver
from socialcare.metrics import schedule
from socialcare.metrics.delivery import DeliveryResult, notifier_for
from socialcare.metrics.digest import build_digest
from socialcare.metrics.digest_model import Digest
from socialcare.metrics.localtime import zone
from socialcare.metrics.models import DigestDelivery
from socialcare.metrics.recipients import Recipient


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


def _build(session: Session, settings: Settings, delivery: DigestDelivery) -> Built[Digest]:
    """A claimed delivery's digest. The period ends at period_end, so built "as of" then, the
    last complete period is exactly the row's, whenever (and however late) the send runs."""
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
    if (digest.start, digest.end) != (delivery.period_start, delivery.period_end):
        raise DeliveryError(
            f"the digest built covers {digest.start} to {digest.end}, not the delivery's"
            f" {delivery.period_start} to {delivery.period_end}",
            permanent=True,
        )
    return Built(schedule.recipient_of(delivery), digest)


def _sender(recipient: Recipient, settings: Settings) -> Callable[[Digest], DeliveryResult]:
    return notifier_for(recipient, settings=settings).send


DIGESTS = Outbox(noun="digest delivery", model=DigestDelivery, build=_build, sender=_sender)


def send_digest(
    delivery_id: int,
    *,
    enqueue: Enqueue,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> str:
    """Claim a delivery, build its digest, deliver it; returns the delivery's state afterwards."""
    return deliver(DIGESTS, delivery_id, settings=settings or get_settings(), now=now)
