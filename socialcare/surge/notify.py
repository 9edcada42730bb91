"""The surge alert's words, and the digest notifiers taught to send it (email, Slack)."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Protocol

from socialcare.config import Settings
from socialcare.errors import ConfigError
from socialcare.metrics import delivery
from socialcare.metrics.delivery import DeliveryResult, EmailNotifier, SlackNotifier
from socialcare.metrics.digest_format import clean, format_duration
from socialcare.metrics.recipients import Recipient


@dataclass(frozen=True)
class SurgeMessage:
    """What a lead is told when a surge opens."""

    surge_id: int
    account: str  # "x:@SpotifyCares"
    title: str
    started_at: datetime
    detected_at: datetime
    post_count: int
    rate_per_hour: float
    expected_per_hour: float
    samples: tuple[str, ...]  # a few of the customers' posts (untrusted text)
    url: str | None = None


def subject(m: SurgeMessage) -> str:
    return clean(f"Surge on {m.account}: {m.title} ({m.post_count} posts)")


def render_text(m: SurgeMessage) -> str:
    """The plain-text alert: what, since when, how fast, against what is usual, a sample."""
    lines = [
        subject(m),
        "",
        f"Started:  {m.started_at:%Y-%m-%d %H:%M} UTC",
        f"Detected: {m.detected_at:%Y-%m-%d %H:%M} UTC"
        f" ({format_duration((m.detected_at - m.started_at).total_seconds())} after its start)",
        f"Rate:     {m.rate_per_hour:.0f} posts/hour, usually {m.expected_per_hour:.1f}/hour",
        "",
        "Some of the posts:",
        *(f"  - {clean(s)[:280]}" for s in m.samples),
    ]
    if m.url:
        lines += ["", f"Open the incident: {m.url}"]
    return "\n".join(lines) + "\n"


def _mrkdwn(text: str) -> str:
    """Slack's escaping: only &, < and > are control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(m: SurgeMessage) -> dict[str, Any]:
    """An incoming-webhook message in Block Kit with a plain-text fallback."""
    samples = "\n".join(f"> {_mrkdwn(clean(s)[:280])}" for s in m.samples) or "_none_"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": subject(m)[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Started*\n{m.started_at:%Y-%m-%d %H:%M} UTC"},
                {"type": "mrkdwn", "text": f"*Posts*\n{m.post_count}"},
                {"type": "mrkdwn", "text": f"*Rate*\n{m.rate_per_hour:.0f}/hour"},
                {"type": "mrkdwn", "text": f"*Usual*\n{m.expected_per_hour:.1f}/hour"},
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": samples[:2900]}},
    ]
    if m.url:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{m.url}|Open the incident>"}}
        )
    return {"text": subject(m), "blocks": blocks}


class AlertNotifier(Protocol):
    """Sends one surge alert: one attempt, DeliveryError (permanent or not) when not accepted."""

    def send_alert(self, message: SurgeMessage) -> DeliveryResult: ...


class EmailAlertNotifier(EmailNotifier):
    """The digest's SMTP notifier (same connection, TLS and error mapping), sending an alert."""

    def send_alert(self, message: SurgeMessage) -> DeliveryResult:
        domain = self.sender.rpartition("@")[2].strip("> ") or "socialcare.invalid"
        msg = EmailMessage()
        msg["Subject"] = subject(message)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid(idstring=f"surge-{message.surge_id}", domain=domain)
        msg.set_content(render_text(message))
        try:
            smtp = self._connect()
            try:
                refused = smtp.send_message(msg)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except (smtplib.SMTPException, OSError) as exc:
            raise delivery._smtp_failure(exc) from exc
        return DeliveryResult(
            channel="email",
            target=", ".join(self.recipients),
            message_id=str(msg["Message-ID"]),
            refused=tuple(sorted(refused)),
        )


class SlackAlertNotifier(SlackNotifier):
    """The digest's Slack webhook notifier, sending an alert."""

    def send_alert(self, message: SurgeMessage) -> DeliveryResult:
        return self.post(slack_payload(message))


def alert_notifier_for(recipient: Recipient, *, settings: Settings) -> AlertNotifier:
    """The alert notifier for one lead; ConfigError names what is missing (as the digests')."""
    digest_notifier = delivery.notifier_for(recipient, settings=settings)
    if isinstance(digest_notifier, EmailNotifier):
        return EmailAlertNotifier(
            smtp_url=settings.smtp_url,
            sender=digest_notifier.sender,
            recipients=digest_notifier.recipients,
            timeout=digest_notifier.timeout,
        )
    if isinstance(digest_notifier, SlackNotifier):
        return SlackAlertNotifier(
            webhook_url=digest_notifier.webhook_url, timeout=digest_notifier.timeout
        )
    raise ConfigError(f"no surge alert for recipient kind {recipient.kind!r}")


def samples_of(texts: Sequence[str], n: int = 3) -> tuple[str, ...]:
    return tuple(clean(t)[:280] for t in texts[:n])
