"""Sending scheduled digests: to a real SMTP server and webhook, once, retried, or dead-lettered."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from sqlalchemy import select

from socialcare import flows
from socialcare.db import session_scope
from socialcare.flows import InlineRunner
from socialcare.metrics.models import DigestDelivery
from socialcare.metrics.outbound import SENDING_LEASE
from socialcare.metrics.recipients import Recipient
from socialcare.metrics.schedule import claim_delivery
from tests.metrics.conftest import MailHandler

MONDAY_NOON = datetime(2025, 3, 10, 12, tzinfo=UTC)
LEAD = Recipient(kind="email", address="lead@example.com", tz="America/New_York")


def mail_settings(settings, smtp_url, *, recipients=(LEAD,), **more):
    return settings.model_copy(
        update={
            "smtp_url": smtp_url,
            "digest_email_from": "digests@example.com",
            "digest_recipients": list(recipients),
            "digest_periods": ("day",),
            **more,
        }
    )


def scheduled(settings, now=MONDAY_NOON) -> int:
    """Schedule the due digests, dropping the enqueued sends; the one delivery's id."""
    dropped = InlineRunner(settings)
    assert flows.schedule_digests(enqueue=dropped, settings=settings, now=now) == 1
    assert [step for step, _ in dropped.pending] == ["send_digest"]
    return int(dropped.pending[0][1][0])


def delivery(settings, delivery_id) -> DigestDelivery:
    with session_scope(settings) as s:
        row = s.get(DigestDelivery, delivery_id)
        assert row is not None
        return row


def send(settings, delivery_id, now=MONDAY_NOON) -> str:
    return flows.send_digest(
        delivery_id, enqueue=InlineRunner(settings), settings=settings, now=now
    )


def test_a_scheduled_digest_reaches_the_mail_server_and_is_marked_sent(
    engine, settings, smtp_server
):
    server = smtp_server()
    settings = mail_settings(settings, server.url())
    runner = InlineRunner(settings)
    assert flows.schedule_digests(enqueue=runner, settings=settings, now=MONDAY_NOON) == 1
    assert runner.drain() == 1
    assert len(server.handler.messages) == 1
    mail = message_from_bytes(server.handler.messages[0])
    assert mail["To"] == "lead@example.com"
    assert "daily first-response digest" in mail["Subject"]
    assert "9 Mar 2025" in mail["Subject"]  # New York's Sunday, the last complete local day
    with session_scope(settings) as s:
        (row,) = s.execute(select(DigestDelivery)).scalars()
        assert (row.state, row.attempts, row.last_error) == ("sent", 1, None)
        assert row.sent_at is not None and row.next_attempt_at is None
        assert row.message_id == mail["Message-ID"]
        assert row.result_target == "lead@example.com"


def test_a_slack_recipient_gets_one_webhook_post(engine, settings, webhook):
    settings = settings.model_copy(
        update={
            "slack_webhook_url": webhook.url(),
            "digest_recipients": [Recipient(kind="slack", address="#care", tz="Europe/Paris")],
            "digest_periods": ("week",),
        }
    )
    runner = InlineRunner(settings)
    flows.schedule_digests(enqueue=runner, settings=settings, now=MONDAY_NOON)
    runner.drain()
    assert len(webhook.received) == 1
    with session_scope(settings) as s:
        (row,) = s.execute(select(DigestDelivery)).scalars()
        assert (row.period, row.state, row.result_target) == ("week", "sent", "127.0.0.1")


def test_with_base_url_the_slack_post_shows_the_trend_chart_and_links_the_periods_report(
    engine, settings, webhook
):
    settings = settings.model_copy(
        update={
            "slack_webhook_url": webhook.url(),
            "digest_recipients": [Recipient(kind="slack", address="#care", tz="Europe/Paris")],
            "digest_periods": ("day",),
            "base_url": "https://care.example.com/",
        }
    )
    runner = InlineRunner(settings)
    flows.schedule_digests(enqueue=runner, settings=settings, now=MONDAY_NOON)
    runner.drain()
    (_, _, payload) = webhook.received[0]
    # Paris's last complete day before Monday noon is Sunday 9 March 2025.
    report = "https://care.example.com/reports?period=day&tz=Europe%2FParis&end=2025-03-09"
    chart = "https://care.example.com/reports/chart/trend.png?period=day&tz=Europe%2FParis&end=2025-03-09"
    images = [b for b in payload["blocks"] if b["type"] == "image"]
    assert [b["image_url"] for b in images] == [chart]
    # In mrkdwn text, & is written &amp; (Slack's own escaping).
    assert report.replace("&", "&amp;") in str(payload["blocks"])


def test_a_transient_failure_leaves_it_pending_with_a_backoff(engine, settings, closed_port):
    settings = mail_settings(settings, f"smtp://127.0.0.1:{closed_port}")
    delivery_id = scheduled(settings)
    assert send(settings, delivery_id) == "pending"
    row = delivery(settings, delivery_id)
    assert row.attempts == 1
    assert "SMTP connection failed" in (row.last_error or "")
    assert row.next_attempt_at is not None
    assert timedelta(seconds=60) <= row.next_attempt_at - MONDAY_NOON <= timedelta(seconds=75)


def test_the_far_sides_retry_after_sets_the_next_attempt(engine, settings, webhook):
    webhook.reply = (429, {"Retry-After": "240"}, b"slow down")
    settings = settings.model_copy(
        update={
            "slack_webhook_url": webhook.url(),
            "digest_recipients": [Recipient(kind="slack", address="#care")],
            "digest_periods": ("day",),
        }
    )
    delivery_id = scheduled(settings)
    assert send(settings, delivery_id) == "pending"
    row = delivery(settings, delivery_id)
    assert row.next_attempt_at == MONDAY_NOON + timedelta(seconds=240)
    assert "429" in (row.last_error or "")


def test_a_permanent_refusal_fails_it_with_the_reason(engine, settings, smtp_server, caplog):
    server = smtp_server(MailHandler(data_reply="550 5.7.1 message refused by policy"))
    settings = mail_settings(settings, server.url())
    delivery_id = scheduled(settings)
    assert send(settings, delivery_id) == "failed"
    row = delivery(settings, delivery_id)
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 1, None)
    assert "550" in (row.last_error or "") and "refused by policy" in (row.last_error or "")
    assert any(r.levelname == "ERROR" and "failed for good" in r.message for r in caplog.records)
    assert server.handler.messages == []


def test_a_recipient_whose_channel_is_not_configured_fails_naming_the_setting(engine, settings):
    settings = mail_settings(settings, "")
    delivery_id = scheduled(settings)
    assert send(settings, delivery_id) == "failed"
    assert "SMTP_URL" in (delivery(settings, delivery_id).last_error or "")


def test_after_max_attempts_transient_failures_it_is_failed(engine, settings, closed_port):
    settings = mail_settings(settings, f"smtp://127.0.0.1:{closed_port}", max_attempts=3)
    delivery_id = scheduled(settings)
    states = [send(settings, delivery_id, now=MONDAY_NOON + timedelta(hours=i)) for i in range(4)]
    assert states == ["pending", "pending", "failed", "failed"]
    row = delivery(settings, delivery_id)
    assert row.attempts == 3
    assert (row.last_error or "").startswith("gave up after 3 attempts: ")


def test_sending_the_same_delivery_twice_delivers_one_email(engine, settings, smtp_server):
    server = smtp_server()
    settings = mail_settings(settings, server.url())
    delivery_id = scheduled(settings)
    assert send(settings, delivery_id) == "sent"
    assert send(settings, delivery_id) == "sent"
    assert len(server.handler.messages) == 1
    assert delivery(settings, delivery_id).attempts == 1


def test_two_workers_sending_the_same_delivery_at_once_deliver_one_email(
    engine, settings, smtp_server
):
    server = smtp_server()
    settings = mail_settings(settings, server.url())
    delivery_id = scheduled(settings)
    barrier = threading.Barrier(4)
    states: list[str] = []

    def worker() -> None:
        barrier.wait(timeout=10)
        states.append(send(settings, delivery_id))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(server.handler.messages) == 1
    assert len(states) == 4 and "sent" in states
    assert delivery(settings, delivery_id).state == "sent"


def test_a_send_whose_worker_died_is_taken_over_once_its_claim_expires(
    engine, settings, smtp_server
):
    server = smtp_server()
    settings = mail_settings(settings, server.url())
    delivery_id = scheduled(settings)
    with session_scope(settings) as s:  # a worker claims it, then dies before sending
        assert claim_delivery(session=s, delivery_id=delivery_id, now=MONDAY_NOON)
    assert send(settings, delivery_id, now=MONDAY_NOON + timedelta(minutes=1)) == "sending"
    assert server.handler.messages == []
    later = MONDAY_NOON + SENDING_LEASE + timedelta(seconds=1)
    assert send(settings, delivery_id, now=later) == "sent"
    assert len(server.handler.messages) == 1
    assert delivery(settings, delivery_id).attempts == 2


def _make_due(settings, delivery_id, **values):
    with session_scope(settings) as s:
        row = s.get(DigestDelivery, delivery_id)
        row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
        for name, value in values.items():
            setattr(row, name, value)


def test_the_sweep_sends_a_delivery_whose_message_was_lost_once(engine, settings, smtp_server):
    server = smtp_server()
    settings = mail_settings(settings, server.url())
    delivery_id = scheduled(settings, now=datetime.now(UTC))  # the send's message is lost
    runner = InlineRunner(settings)
    assert flows.sweep(enqueue=runner, settings=settings)["digests"] == 0  # not overdue yet
    _make_due(settings, delivery_id)
    assert flows.sweep(enqueue=runner, settings=settings)["digests"] == 1
    assert flows.sweep(enqueue=runner, settings=settings)["digests"] == 0  # leased meanwhile
    runner.drain()
    assert len(server.handler.messages) == 1
    assert delivery(settings, delivery_id).state == "sent"


@pytest.mark.parametrize(("attempts", "state"), [(1, "pending"), (5, "failed")])
def test_the_sweep_returns_a_dead_workers_send_to_pending_or_gives_it_up(
    engine, settings, attempts, state
):
    settings = mail_settings(settings, "smtp://127.0.0.1:25", max_attempts=5)
    delivery_id = scheduled(settings)
    _make_due(settings, delivery_id, state="sending", attempts=attempts)
    swept = flows.sweep(enqueue=InlineRunner(settings), settings=settings)
    assert swept["digests"] == (1 if state == "pending" else 0)
    row = delivery(settings, delivery_id)
    assert row.state == state
    assert "worker lost" in (row.last_error or "")


def test_the_emailed_figures_are_the_periods_cases_computed_independently(
    engine, settings, session, smtp_server
):
    from zoneinfo import ZoneInfo

    from socialcare.metrics.digest_format import format_duration, format_percent
    from tests.factories import make_account, make_case, make_post
    from tests.metrics.test_figures import quantile

    ny = ZoneInfo("America/New_York")
    account = make_account(session)
    # New York's Sunday 9 March 2025 (23 hours: clocks went forward): replies after 1 to 90 min.
    sunday = datetime(2025, 3, 9, tzinfo=ny)
    waits = [60, 300, 600, 1200, 2400, 5400]
    for i, wait in enumerate(waits):
        opened = (sunday + timedelta(hours=3 * i + 1)).astimezone(UTC)
        root = make_post(session, account, created_at=opened)
        make_case(
            session,
            account,
            root,
            priority="P2",
            first_response_at=opened + timedelta(seconds=wait),
        )
    late_root = make_post(
        session, account, created_at=(sunday + timedelta(hours=20)).astimezone(UTC)
    )
    make_case(session, account, late_root, priority="P2")  # still unanswered, past its hour
    session.commit()
    server = smtp_server()
    settings = mail_settings(settings, server.url())
    runner = InlineRunner(settings)
    flows.schedule_digests(enqueue=runner, settings=settings, now=MONDAY_NOON)
    runner.drain()
    mail = message_from_bytes(server.handler.messages[0], policy=default_policy)
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_content()
    lines = text.splitlines()
    answered = [float(w) for w in waits]
    met = sum(w <= 3600 for w in waits)
    assert "Cases 7 · answered 6 · unanswered 1" in lines
    assert f"p50 {format_duration(quantile(answered, 0.5))}" in lines
    assert f"p90 {format_duration(quantile(answered, 0.9))}" in lines
    assert f"p95 {format_duration(quantile(answered, 0.95))}" in lines
    assert f"mean {format_duration(sum(answered) / len(answered))}" in lines
    assert (
        f"SLA attainment {format_percent(met / 7)} (unanswered past SLA count as misses)" in lines
    )
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_content()
    assert format_duration(quantile(answered, 0.9)) in html and format_percent(met / 7) in html
