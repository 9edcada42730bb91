"""Digest delivery: email over SMTP, Slack incoming webhooks, stdout.

A notifier makes one attempt. Failures become DeliveryError, marked permanent when retrying cannot
help; the caller (a Celery task) retries the transient ones, after retry_after when it is given.
"""

from __future__ import annotations

import smtplib
import ssl
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from typing import Any, Protocol, TextIO
from urllib.parse import urlsplit, urlunsplit

import requests

from socialcare.config import Settings
from socialcare.errors import ConfigError, DeliveryError
from socialcare.metrics.charts import render_charts
from socialcare.metrics.digest_format import clean, format_duration, format_percent, period_label
from socialcare.metrics.digest_format import title as digest_title
from socialcare.metrics.digest_model import Digest
from socialcare.metrics.digest_render import render_html, render_text, slack_payload
from socialcare.metrics.recipients import Recipient, parse_smtp_url

__all__ = [
    "DeliveryError",
    "DeliveryResult",
    "EmailNotifier",
    "Notifier",
    "SlackNotifier",
    "StdoutNotifier",
    "build_email",
    "notifier_for",
    "parse_retry_after",
]


@dataclass(frozen=True)
class DeliveryResult:
    """What a successful send reached; target never carries a secret (no password, no webhook)."""

    channel: str  # "email" | "slack" | "stdout"
    target: str
    message_id: str | None = None
    refused: tuple[str, ...] = ()  # recipients the mail server refused while accepting others


class Notifier(Protocol):
    """Delivers a digest to one destination.

    send makes one attempt and returns a DeliveryResult, or raises DeliveryError: permanent=True
    when a retry cannot succeed, else transient, with retry_after in seconds when the far side
    said how long to wait. It never retries by itself.
    """

    def send(self, digest: Digest) -> DeliveryResult: ...


def subject(digest: Digest) -> str:
    """'Acme: weekly first-response digest, 3 Mar to 9 Mar 2025: p90 12m 00s, ...'."""
    t = digest.total
    return clean(
        f"{digest_title(digest)}, {period_label(digest)}: p90 {format_duration(t.p90_s)},"
        f" SLA {format_percent(t.sla_attainment)}, {t.unanswered} unanswered"
    )


def build_email(digest: Digest, *, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """multipart/alternative: the text part, then HTML related to its charts as inline PNGs."""
    domain = sender.rpartition("@")[2].strip("> ") or "socialcare.invalid"
    charts = render_charts(digest)
    cids = {name: make_msgid(idstring=f"chart-{name}", domain=domain) for name in charts}
    msg = EmailMessage()
    msg["Subject"] = subject(digest)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(idstring="digest", domain=domain)
    msg.set_content(render_text(digest))
    bare = {name: cid.strip("<>") for name, cid in cids.items()}
    msg.add_alternative(render_html(digest, chart_cids=bare), subtype="html")
    html_part = next(p for p in msg.iter_parts() if p.get_content_type() == "text/html")
    for name, png in charts.items():
        html_part.add_related(
            png, "image", "png", cid=cids[name], disposition="inline", filename=f"{name}.png"
        )
    return msg


def _smtp_failure(exc: Exception) -> DeliveryError:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(f"SMTP login refused ({exc.smtp_code})", permanent=True)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        permanent = all(code >= 500 for code in codes)
        return DeliveryError(f"SMTP refused every recipient ({codes})", permanent=permanent)
    if isinstance(exc, smtplib.SMTPResponseException):
        err = exc.smtp_error
        text = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
        permanent = 500 <= exc.smtp_code < 600
        return DeliveryError(f"SMTP {exc.smtp_code} {clean(text)[:200]}", permanent=permanent)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"SMTP server lacks a needed extension: {exc}", permanent=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(f"SMTP server certificate rejected: {exc}", permanent=True)
    # Disconnects, refused or reset connections, timeouts, DNS trouble: worth another try.
    return DeliveryError(f"SMTP connection failed: {type(exc).__name__}: {exc}", permanent=False)


class EmailNotifier:
    """Sends the digest through an SMTP server (SMTP_URL), with a timeout on the connection."""

    def __init__(
        self,
        *,
        smtp_url: str,
        sender: str,
        recipients: Sequence[str],
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.smtp = parse_smtp_url(smtp_url)
        self.sender = sender
        self.recipients = list(recipients)
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.smtp
        smtp: smtplib.SMTP
        if cfg.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=self.timeout, context=self.ssl_context
            )
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=self.timeout)
        try:
            if cfg.starttls:
                smtp.starttls(context=self.ssl_context)
            if cfg.username:
                smtp.login(cfg.username, cfg.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, digest: Digest) -> DeliveryResult:
        msg = build_email(digest, sender=self.sender, recipients=self.recipients)
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
            raise _smtp_failure(exc) from exc
        return DeliveryResult(
            channel="email",
            target=", ".join(self.recipients),
            message_id=str(msg["Message-ID"]),
            refused=tuple(sorted(refused)),
        )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class SlackNotifier:
    """Posts the digest to a Slack incoming webhook (SLACK_WEBHOOK_URL) with a timeout.

    chart_url, when given, returns a public URL of the digest's chart for the image block;
    otherwise the message links to the report page.
    """

    def __init__(
        self,
        *,
        webhook_url: str,
        timeout: float,
        chart_url: Callable[[Digest], str | None] | None = None,
    ) -> None:
        self.webhook_url = webhook_url
        self.timeout = timeout
        self.chart_url = chart_url
        # The webhook's path is its secret: only the host appears in results and errors.
        self.host = urlsplit(webhook_url).hostname or "?"

    def send(self, digest: Digest) -> DeliveryResult:
        payload = slack_payload(
            digest, chart_url=self.chart_url(digest) if self.chart_url else None
        )
        return self.post(payload)

    def post(self, payload: dict[str, Any]) -> DeliveryResult:
        """POST one message to the webhook; DeliveryError says whether to try again."""
        try:
            response = requests.post(self.webhook_url, json=payload, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise DeliveryError(
                f"Slack webhook at {self.host} unreachable: {type(exc).__name__}", permanent=False
            ) from None
        except requests.RequestException as exc:
            raise DeliveryError(
                f"Slack webhook request failed: {type(exc).__name__}", permanent=True
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise DeliveryError(
                f"Slack webhook at {self.host} answered {status}",
                permanent=False,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 300:
            raise DeliveryError(
                f"Slack webhook at {self.host} answered {status}: {clean(response.text)[:200]}",
                permanent=True,
            )
        return DeliveryResult(channel="slack", target=self.host)


class StdoutNotifier:
    """Prints the digest's text part (for `socialcare digest` runs and development)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, digest: Digest) -> DeliveryResult:
        stream = self.stream or sys.stdout
        stream.write(render_text(digest))
        stream.flush()
        return DeliveryResult(channel="stdout", target=getattr(stream, "name", "stdout"))


def trend_chart_url(digest: Digest) -> str | None:
    """The p50/p90 trend chart the web app serves for the digest's report page, if it links one
    (Slack shows it as an image; incoming webhooks cannot upload files)."""
    if not digest.report_url:
        return None
    parts = urlsplit(digest.report_url)
    if not parts.path.endswith("/reports"):
        return None
    return urlunsplit(parts._replace(path=parts.path + "/chart/trend.png"))


def notifier_for(recipient: Recipient, *, settings: Settings) -> Notifier:
    """The notifier for one DIGEST_RECIPIENTS entry; ConfigError names what is missing."""
    if recipient.kind == "email":
        if not settings.smtp_url:
            raise ConfigError("DIGEST_RECIPIENTS has an email recipient but SMTP_URL is empty")
        if not settings.digest_email_from:
            raise ConfigError(
                "DIGEST_RECIPIENTS has an email recipient but DIGEST_EMAIL_FROM is empty"
            )
        return EmailNotifier(
            smtp_url=settings.smtp_url,
            sender=settings.digest_email_from,
            recipients=[recipient.address],
            timeout=settings.http_timeout_seconds,
        )
    if recipient.kind == "slack":
        if not settings.slack_webhook_url:
            raise ConfigError(
                "DIGEST_RECIPIENTS has a Slack recipient but SLACK_WEBHOOK_URL is empty"
            )
        return SlackNotifier(
            webhook_url=settings.slack_webhook_url,
            timeout=settings.http_timeout_seconds,
            chart_url=trend_chart_url,
        )
    raise ConfigError(f"DIGEST_RECIPIENTS: unknown kind {recipient.kind!r}")
