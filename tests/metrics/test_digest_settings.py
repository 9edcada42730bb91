"""Digest delivery settings: recipients, the SMTP URL, and errors that name the variable."""

from __future__ import annotations

import pytest

from socialcare.config import load_settings
from socialcare.errors import ConfigError
from socialcare.metrics.recipients import Recipient, parse_recipients, parse_smtp_url

VARIABLES = ("SMTP_URL", "DIGEST_EMAIL_FROM", "SLACK_WEBHOOK_URL", "DIGEST_RECIPIENTS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_with_nothing_set_no_digest_is_delivered() -> None:
    s = load_settings()
    assert (s.smtp_url, s.digest_email_from, s.slack_webhook_url) == ("", "", "")
    assert s.digest_recipients == []


def test_recipients_are_read_with_their_time_zones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DIGEST_RECIPIENTS",
        " email:lead@example.com@Europe/London, slack:#care@America/New_York,"
        "EMAIL:ops@example.co.uk,slack:#night ,",
    )
    assert load_settings().digest_recipients == [
        Recipient("email", "lead@example.com", "Europe/London"),
        Recipient("slack", "#care", "America/New_York"),
        Recipient("email", "ops@example.co.uk", "UTC"),
        Recipient("slack", "#night", "UTC"),
    ]


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("fax:+4420123456", "start with email: or slack:"),
        ("lead@example.com", "start with email: or slack:"),
        ("email:lead@example.com@Europe/Londn", "unknown time zone 'Europe/Londn'"),
        ("email:not-an-address@Europe/London", "is not an email address"),
        ("email:@Europe/London", "empty or malformed address"),
        ("slack:@UTC", "empty or malformed address"),
        ("email:a b@example.com", "empty or malformed address"),
    ],
)
def test_a_bad_recipient_is_refused_with_the_item_and_the_reason(
    value: str, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_recipients(value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DIGEST_RECIPIENTS", "pager:oncall"),
        ("SMTP_URL", "http://mail.example.com"),
        ("SMTP_URL", "smtp://:25"),
        ("SMTP_URL", "smtp://mail.example.com:twenty"),
        ("SMTP_URL", "smtps://mail.example.com?starttls=true"),
        ("SMTP_URL", "smtp://mail.example.com?starttls=maybe"),
        ("SMTP_URL", "smtp://mail.example.com?tls=1"),
        ("SLACK_WEBHOOK_URL", "hooks.slack.com/services/x"),
        ("DIGEST_EMAIL_FROM", "digests"),
    ],
)
def test_a_bad_value_stops_start_up_with_a_message_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_a_bad_smtp_url_is_reported_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_URL", "smtp://bot:hunter2@mail.example.com:99999")
    with pytest.raises(ConfigError, match="SMTP_URL") as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", ("mail.example.com", 25, None, None, False, False)),
        (
            "smtp://u:p@mail.example.com?starttls=true",
            ("mail.example.com", 587, "u", "p", False, True),
        ),
        ("smtps://u:p%40ss@mail.example.com", ("mail.example.com", 465, "u", "p@ss", True, False)),
        (
            "SMTP://mail.example.com:2525?starttls=no",
            ("mail.example.com", 2525, None, None, False, False),
        ),
    ],
)
def test_smtp_urls_give_host_port_credentials_and_tls(
    url: str, expected: tuple[object, ...]
) -> None:
    cfg = parse_smtp_url(url)
    assert (
        cfg.host,
        cfg.port,
        cfg.username,
        cfg.password,
        cfg.implicit_tls,
        cfg.starttls,
    ) == expected


def test_the_smtp_settings_never_show_their_password() -> None:
    assert "hunter2" not in repr(parse_smtp_url("smtps://bot:hunter2@mail.example.com"))
