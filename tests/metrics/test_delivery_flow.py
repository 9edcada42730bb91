"""The one delivery flow (flows.delivery) over a real row model, with a recording sender: the
claim, the build, the send and the outcome, whatever the kind of message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from socialcare.config import Settings
from socialcare.errors import ConfigError, DeliveryError
from socialcare.flows.delivery import Built, Outbox, deliver
from socialcare.metrics.delivery import DeliveryResult
from socialcare.metrics.models import DigestDelivery
from socialcare.metrics.recipients import Recipient
from tests.metrics.test_digest_send import LEAD, MONDAY_NOON, delivery, mail_settings, scheduled


class Outgoing:
    """A sender that keeps what it sends, or refuses as told."""

    def __init__(self, refusal: Exception | None = None) -> None:
        self.sent: list[tuple[str, str]] = []
        self.built = 0
        self.refusal = refusal

    def build(self, session: object, settings: Settings, row: DigestDelivery) -> Built[str]:
        self.built += 1
        return Built(LEAD, f"digest of {row.period_start:%Y-%m-%d}")

    def sender(self, recipient: Recipient, settings: Settings) -> Callable[[str], DeliveryResult]:
        def send(message: str) -> DeliveryResult:
            if self.refusal is not None:
                raise self.refusal
            self.sent.append((recipient.address, message))
            return DeliveryResult(channel="email", target=recipient.address, message_id="<m1>")

        return send

    def outbox(
        self, sent: Callable[[object, DigestDelivery, DeliveryResult, datetime], None] | None = None
    ) -> Outbox[DigestDelivery, str]:
        return Outbox(
            noun="test delivery",
            model=DigestDelivery,
            build=self.build,
            sender=self.sender,
            sent=sent,
        )


@pytest.fixture
def row_id(engine, settings) -> int:
    return scheduled(mail_settings(settings, "smtp://127.0.0.1:1"))


def test_a_row_is_built_sent_and_recorded_once_however_often_its_task_runs(
    engine, settings, row_id
):
    out = Outgoing()
    noted: list[tuple[int, str, datetime]] = []
    outbox = out.outbox(sent=lambda s, row, result, at: noted.append((row.id, result.target, at)))
    assert deliver(outbox, row_id, settings=settings, now=MONDAY_NOON) == "sent"
    assert deliver(outbox, row_id, settings=settings, now=MONDAY_NOON) == "sent"
    assert len(out.sent) == 1 and out.built == 1
    assert out.sent[0][0] == "lead@example.com"
    assert noted == [(row_id, "lead@example.com", MONDAY_NOON)]
    row = delivery(settings, row_id)
    assert (row.state, row.attempts, row.message_id) == ("sent", 1, "<m1>")


def test_missing_settings_for_the_recipient_fail_the_row_for_good(engine, settings, row_id):
    out = Outgoing()

    def unconfigured(recipient: Recipient, settings: Settings) -> Callable[[str], DeliveryResult]:
        raise ConfigError("SMTP_URL is not set")

    outbox = Outbox(noun="test", model=DigestDelivery, build=out.build, sender=unconfigured)
    assert deliver(outbox, row_id, settings=settings, now=MONDAY_NOON) == "failed"
    row = delivery(settings, row_id)
    assert (row.state, row.last_error) == ("failed", "SMTP_URL is not set")
    assert deliver(outbox, row_id, settings=settings, now=MONDAY_NOON) == "failed"
    assert delivery(settings, row_id).attempts == 1


def test_a_refusal_the_far_side_may_lift_leaves_the_row_pending_for_a_retry(
    engine, settings, row_id
):
    out = Outgoing(DeliveryError("421 try later", permanent=False, retry_after=120))
    assert deliver(out.outbox(), row_id, settings=settings, now=MONDAY_NOON) == "pending"
    row = delivery(settings, row_id)
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "421 try later")
    assert row.next_attempt_at is not None


def test_a_bug_in_the_build_is_raised_again_and_the_row_stays_retryable(engine, settings, row_id):
    def broken(session: object, settings: Settings, row: DigestDelivery) -> Built[str]:
        raise KeyError("period")

    out = Outgoing()
    outbox = Outbox(noun="test", model=DigestDelivery, build=broken, sender=out.sender)
    with pytest.raises(KeyError):
        deliver(outbox, row_id, settings=settings, now=MONDAY_NOON)
    row = delivery(settings, row_id)
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.last_error == "KeyError: 'period'"
    assert out.sent == []


def test_no_such_row_is_missing(engine, settings):
    out = Outgoing()
    assert deliver(out.outbox(), 987654, settings=settings, now=MONDAY_NOON) == "missing"
    assert out.built == 0
