"""`socialcare digest` and `socialcare digest status`, driven as an operator would."""

from __future__ import annotations

import json
from email import message_from_bytes

import pytest
from typer.testing import CliRunner

from socialcare import config, flows
from socialcare.cli import app
from socialcare.db import session_scope
from socialcare.flows import InlineRunner
from socialcare.posts.service import ensure_account


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def configure(settings, monkeypatch):
    """Set environment variables and make them the process's settings."""

    def apply(**env: str) -> config.Settings:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        config.get_settings.cache_clear()
        return config.get_settings()

    return apply


def test_digest_to_stdout_prints_the_digests_text(engine, settings):
    result = invoke("digest", "--period", "week", "--to", "stdout", "--tz", "Pacific/Auckland")
    assert result.exit_code == 0, result.output
    assert "weekly first-response digest" in result.output
    assert "(Pacific/Auckland)" in result.output
    assert "SLA attainment" in result.output


def test_digest_for_one_account_names_its_brand_or_refuses_an_unknown_handle(engine, settings):
    with session_scope(settings) as s:
        ensure_account(session=s, platform="x", handle="AcmeHelp", source="x", polled=False)
    result = invoke("digest", "--to", "stdout", "--account", "@AcmeHelp")
    assert result.exit_code == 0, result.output
    assert "first-response digest" in result.output
    result = invoke("digest", "--to", "stdout", "--account", "nobody")
    assert result.exit_code != 0
    assert "no account with the handle 'nobody'" in result.output


def test_digest_to_email_without_smtp_url_fails_naming_smtp_url(engine, settings, configure):
    configure(SMTP_URL="", DIGEST_RECIPIENTS="email:lead@example.com")
    result = invoke("digest", "--to", "email")
    assert result.exit_code != 0
    assert "SMTP_URL" in result.output


def test_digest_to_email_delivers_now_to_each_email_recipient(
    engine, settings, configure, smtp_server
):
    server = smtp_server()
    configure(
        SMTP_URL=server.url(),
        DIGEST_EMAIL_FROM="digests@example.com",
        DIGEST_RECIPIENTS="email:lead@example.com@Europe/London,slack:#care,email:ops@example.com",
    )
    result = invoke("digest", "--period", "day", "--to", "email")
    assert result.exit_code == 0, result.output
    assert "sent the day digest to lead@example.com" in result.output
    assert sorted(message_from_bytes(m)["To"] for m in server.handler.messages) == [
        "lead@example.com",
        "ops@example.com",
    ]


def test_a_failed_delivery_exits_non_zero_with_the_reason(engine, settings, configure, closed_port):
    configure(
        SMTP_URL=f"smtp://127.0.0.1:{closed_port}",
        DIGEST_EMAIL_FROM="digests@example.com",
        DIGEST_RECIPIENTS="email:lead@example.com",
    )
    result = invoke("digest", "--to", "email")
    assert result.exit_code == 1
    assert "delivery failed (transient, try again later): SMTP connection failed" in result.output


def test_digest_to_slack_without_a_webhook_fails_naming_the_setting(engine, settings, configure):
    configure(SLACK_WEBHOOK_URL="")
    result = invoke("digest", "--to", "slack")
    assert result.exit_code != 0
    assert "SLACK_WEBHOOK_URL" in result.output


def test_an_unknown_channel_or_zone_is_a_usage_error(engine, settings):
    assert invoke("digest", "--to", "fax").exit_code == 2
    result = invoke("digest", "--to", "stdout", "--tz", "Mars/Olympus")
    assert result.exit_code == 2 and "Mars/Olympus" in result.output


def test_digest_status_lists_scheduled_deliveries_with_their_state_and_error(
    engine, settings, configure, closed_port
):
    settings = configure(
        SMTP_URL=f"smtp://127.0.0.1:{closed_port}",
        DIGEST_EMAIL_FROM="digests@example.com",
        DIGEST_RECIPIENTS="email:lead@example.com@America/New_York",
        DIGEST_PERIODS="day",
    )
    assert "no scheduled digest deliveries" in invoke("digest", "status").output
    runner = InlineRunner(settings)
    flows.schedule_digests(enqueue=runner, settings=settings)
    runner.drain()
    table = invoke("digest", "status")
    assert table.exit_code == 0, table.output
    assert "email:lead@example.com" in table.output and "pending" in table.output
    result = invoke("digest", "status", "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert (row["recipient"], row["period"], row["state"], row["attempts"]) == (
        "email:lead@example.com",
        "day",
        "pending",
        1,
    )
    assert row["tz"] == "America/New_York"
    assert "SMTP connection failed" in row["last_error"]
