"""Digest delivery to a real SMTP server and a real HTTP webhook on 127.0.0.1."""

from __future__ import annotations

import io
import re
import ssl
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from socialcare.config import load_settings
from socialcare.errors import ConfigError, DeliveryError
from socialcare.metrics.delivery import (
    EmailNotifier,
    SlackNotifier,
    StdoutNotifier,
    notifier_for,
    parse_retry_after,
)
from socialcare.metrics.recipients import Recipient
from tests.metrics.conftest import MailHandler, MailServer, Webhook
from tests.metrics.digest_samples import HOSTILE, empty_digest, png_size, sample_digest

StartServer = Callable[..., MailServer]
HEADLINE = ("4m 05s", "12m 00s", "92%", "unanswered 7", "was 18m 00s, -33%")


def email_to(server: MailServer, **kwargs: object) -> EmailNotifier:
    options: dict[str, object] = {
        "smtp_url": server.url(),
        "sender": "Care digests <digests@example.com>",
        "recipients": ["lead@example.com"],
        "timeout": 5.0,
    }
    options.update(kwargs)
    return EmailNotifier(**options)  # type: ignore[arg-type]


def received(server: MailServer) -> EmailMessage:
    (raw,) = server.handler.messages
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(msg: EmailMessage) -> tuple[str, str, dict[str, bytes]]:
    """The text part, the HTML part and the inline images by Content-ID (without brackets)."""
    assert msg.get_content_type() == "multipart/alternative"
    text_part, related = list(msg.iter_parts())
    assert text_part.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, *images = list(related.iter_parts())
    assert html_part.get_content_type() == "text/html"
    pngs = {}
    for image in images:
        assert image.get_content_type() == "image/png"
        assert image.get_content_disposition() == "inline"
        pngs[str(image["Content-ID"]).strip().strip("<>")] = image.get_content()
    return text_part.get_content(), html_part.get_content(), pngs


def test_the_email_arrives_as_text_and_html_with_every_chart_inline(
    smtp_server: StartServer,
) -> None:
    server = smtp_server()
    result = email_to(server).send(sample_digest())
    msg = received(server)
    _, html, pngs = parts(msg)
    assert len(pngs) == 4
    for cid, png in pngs.items():
        assert f'src="cid:{cid}"' in html
        assert png_size(png)[1] > 100
    assert set(re.findall(r'src="cid:([^"]+)"', html)) == set(pngs)
    assert result.channel == "email"
    assert result.message_id == msg["Message-ID"]
    assert msg["To"] == "lead@example.com"
    assert "p90 12m 00s" in msg["Subject"]


def test_both_parts_carry_the_headline_figures_of_the_digest(smtp_server: StartServer) -> None:
    server = smtp_server()
    email_to(server).send(sample_digest())
    text, html, _ = parts(received(server))
    for figure in HEADLINE:
        assert figure in text
    assert "<td><strong>Unanswered</strong></td><td>7</td>" in html
    for figure in HEADLINE[:3] + HEADLINE[4:]:
        assert figure in html
    assert "12,345" in text and "12,345" in html


def test_a_hostile_handle_arrives_escaped_in_the_html(smtp_server: StartServer) -> None:
    server = smtp_server()
    email_to(server).send(sample_digest())
    _, html, _ = parts(received(server))
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:" not in html
    assert "<script" not in html.lower()


def test_an_empty_digest_is_delivered_by_email(smtp_server: StartServer) -> None:
    server = smtp_server()
    email_to(server).send(empty_digest())
    text, html, pngs = parts(received(server))
    assert "unanswered 0" in text
    assert "n/a" in html
    assert len(pngs) == 4
    assert all(png_size(png)[0] > 100 for png in pngs.values())


def test_the_credentials_in_the_smtp_url_are_used_to_log_in(smtp_server: StartServer) -> None:
    server = smtp_server(password="p@ss:word")
    notifier = email_to(server, smtp_url=server.url(userinfo="digest%2Bbot:p%40ss%3Aword"))
    notifier.send(sample_digest())
    assert server.handler.logins == [("digest+bot", "p@ss:word")]
    assert len(server.handler.messages) == 1


def test_a_refused_login_is_a_permanent_failure(smtp_server: StartServer) -> None:
    server = smtp_server(password="right")
    with pytest.raises(DeliveryError) as caught:
        email_to(server, smtp_url=server.url(userinfo="bot:wrong")).send(sample_digest())
    assert caught.value.permanent
    assert "wrong" not in str(caught.value)
    assert server.handler.messages == []


@pytest.mark.parametrize(
    ("handler", "permanent"),
    [
        (MailHandler(data_reply="550 5.7.1 Message rejected as spam"), True),
        (MailHandler(rcpt_reply="550 5.1.1 No such mailbox"), True),
        (MailHandler(data_reply="451 4.3.0 Try again later"), False),
        (MailHandler(rcpt_reply="450 4.2.1 Mailbox busy"), False),
    ],
)
def test_smtp_5xx_replies_are_permanent_and_4xx_replies_transient(
    smtp_server: StartServer, handler: MailHandler, permanent: bool
) -> None:
    server = smtp_server(handler)
    with pytest.raises(DeliveryError) as caught:
        email_to(server).send(sample_digest())
    assert caught.value.permanent is permanent
    assert caught.value.retry_after is None


def test_a_closed_smtp_port_is_a_transient_failure(closed_port: int) -> None:
    notifier = EmailNotifier(
        smtp_url=f"smtp://127.0.0.1:{closed_port}",
        sender="digests@example.com",
        recipients=["lead@example.com"],
        timeout=2.0,
    )
    with pytest.raises(DeliveryError) as caught:
        notifier.send(sample_digest())
    assert caught.value.permanent is False


def test_an_smtp_server_that_never_greets_times_out_as_transient(silent_port: int) -> None:
    notifier = EmailNotifier(
        smtp_url=f"smtp://127.0.0.1:{silent_port}",
        sender="digests@example.com",
        recipients=["lead@example.com"],
        timeout=0.5,
    )
    with pytest.raises(DeliveryError) as caught:
        notifier.send(sample_digest())
    assert caught.value.permanent is False
    assert "timed out" in str(caught.value).lower() or "Timeout" in str(caught.value)


def test_starttls_upgrades_the_connection_before_logging_in(
    smtp_server: StartServer, self_signed: tuple[Path, Path]
) -> None:
    cert, key = self_signed
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    server = smtp_server(password="secret", tls_context=server_tls)
    url = server.url(userinfo="bot:secret", query="?starttls=true")
    client_tls = ssl.create_default_context(cafile=str(cert))
    email_to(server, smtp_url=url, ssl_context=client_tls).send(sample_digest())
    assert server.handler.logins == [("bot", "secret")]
    assert len(server.handler.messages) == 1


def test_an_untrusted_server_certificate_is_a_permanent_failure(
    smtp_server: StartServer, self_signed: tuple[Path, Path]
) -> None:
    cert, key = self_signed
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    server = smtp_server(tls_context=server_tls)
    with pytest.raises(DeliveryError) as caught:
        email_to(server, smtp_url=server.url(query="?starttls=true")).send(sample_digest())
    assert caught.value.permanent is True
    assert server.handler.messages == []


def slack_to(hook: Webhook, **kwargs: object) -> SlackNotifier:
    return SlackNotifier(webhook_url=hook.url(), timeout=5.0, **kwargs)  # type: ignore[arg-type]


def test_the_slack_message_carries_the_headline_figures(webhook: Webhook) -> None:
    result = slack_to(webhook).send(sample_digest())
    ((path, content_type, payload),) = webhook.received
    assert path == "/services/T000/B000/s3cr3t"
    assert content_type == "application/json"
    kinds = [block["type"] for block in payload["blocks"]]
    assert kinds[0] == "header" and kinds[-1] == "context"
    fields = " ".join(f["text"] for f in payload["blocks"][1]["fields"])
    for figure in HEADLINE:
        assert figure in fields
    assert "↓" in fields and "↑" in fields
    assert "image" not in kinds
    assert "<https://care.example.com/reports/latency?brand=Acme&amp;period=week|" in str(payload)
    assert result.target == "127.0.0.1" and "s3cr3t" not in repr(result)


def test_a_chart_url_becomes_an_image_block(webhook: Webhook) -> None:
    chart = "https://care.example.com/charts/trend.png"
    slack_to(webhook, chart_url=lambda digest: chart).send(sample_digest())
    blocks = webhook.received[0][2]["blocks"]
    images = [b for b in blocks if b["type"] == "image"]
    assert images == [{"type": "image", "image_url": chart, "alt_text": "First response by day"}]


def test_an_empty_digest_is_delivered_to_slack(webhook: Webhook) -> None:
    slack_to(webhook).send(empty_digest())
    payload = webhook.received[0][2]
    assert "unanswered 0" in payload["blocks"][1]["fields"][3]["text"]
    assert "n/a" in payload["text"]


@pytest.mark.parametrize(
    ("status", "headers", "permanent", "retry_after"),
    [
        (500, {}, False, None),
        (503, {"Retry-After": "7"}, False, 7.0),
        (429, {"Retry-After": "30"}, False, 30.0),
        (429, {}, False, None),
        (404, {}, True, None),
        (400, {}, True, None),
        (410, {"Retry-After": "30"}, True, None),
    ],
)
def test_webhook_answers_are_classified_for_retries(
    webhook: Webhook,
    status: int,
    headers: dict[str, str],
    permanent: bool,
    retry_after: float | None,
) -> None:
    webhook.reply = (status, headers, b"no_service")
    with pytest.raises(DeliveryError) as caught:
        slack_to(webhook).send(sample_digest())
    assert caught.value.permanent is permanent
    assert caught.value.retry_after == retry_after
    assert str(status) in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_an_unreachable_or_silent_webhook_is_a_transient_failure(
    closed_port: int, silent_port: int
) -> None:
    for port in (closed_port, silent_port):
        notifier = SlackNotifier(webhook_url=f"http://127.0.0.1:{port}/s3cr3t", timeout=0.5)
        with pytest.raises(DeliveryError) as caught:
            notifier.send(sample_digest())
        assert caught.value.permanent is False
        assert "s3cr3t" not in str(caught.value)


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    from datetime import UTC, datetime

    now = datetime(2025, 3, 10, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after("Mon, 10 Mar 2025 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Mon, 10 Mar 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None


def test_the_stdout_notifier_prints_the_text_part() -> None:
    out = io.StringIO()
    result = StdoutNotifier(out).send(sample_digest())
    assert out.getvalue().startswith("Acme: weekly first-response digest\n")
    assert "p90 12m 00s" in out.getvalue()
    assert result.channel == "stdout"


def test_each_recipient_gets_the_notifier_its_settings_allow() -> None:
    settings = load_settings(
        SMTP_URL="smtp://mail.example.com:2525",
        DIGEST_EMAIL_FROM="digests@example.com",
        SLACK_WEBHOOK_URL="https://hooks.example.com/services/x",
    )
    email = notifier_for(Recipient("email", "lead@example.com", "Europe/London"), settings=settings)
    assert isinstance(email, EmailNotifier)
    assert (email.smtp.host, email.smtp.port, email.recipients) == (
        "mail.example.com",
        2525,
        ["lead@example.com"],
    )
    assert isinstance(notifier_for(Recipient("slack", "#care"), settings=settings), SlackNotifier)


@pytest.mark.parametrize(
    ("recipient", "overrides", "variable"),
    [
        (
            Recipient("email", "lead@example.com"),
            {"DIGEST_EMAIL_FROM": "d@example.com"},
            "SMTP_URL",
        ),
        (Recipient("email", "lead@example.com"), {"SMTP_URL": "smtp://h"}, "DIGEST_EMAIL_FROM"),
        (Recipient("slack", "#care"), {}, "SLACK_WEBHOOK_URL"),
    ],
)
def test_a_recipient_without_its_channel_configured_names_the_missing_variable(
    recipient: Recipient,
    overrides: dict[str, str],
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SMTP_URL", "DIGEST_EMAIL_FROM", "SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match=variable):
        notifier_for(recipient, settings=load_settings(**overrides))
