"""Operators' view of ingestion: `accounts add`, `poll ACCOUNT --once`, `sources status`, and
the alert for an account that missed two poll intervals."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from socialcare import flows
from socialcare.cli import app
from socialcare.db import session_scope, utcnow
from socialcare.flows import InlineRunner
from socialcare.ingest import service as ingestion
from socialcare.ingest.status import COLUMNS
from socialcare.posts.models import Account
from socialcare.scoring import complaint, sentiment
from tests.fakes import CueWordComplaints, CueWordSentiment
from tests.sources.test_x_ingest import BRAND, first_poll


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> None:
    """`poll` scores what it stores: cue-word models, so no encoder is loaded."""
    monkeypatch.setattr(sentiment, "get_sentiment_model", lambda settings: CueWordSentiment())
    monkeypatch.setattr(complaint, "get_complaint_model", lambda settings: CueWordComplaints())


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output + repr(result.exception)
    return result.output


def test_accounts_add_takes_the_platform_and_is_the_one_spelling(engine, settings):
    added = run("accounts", "add", "x", "@AcmeCare")
    assert re.fullmatch(r"account \d+: x @AcmeCare\n", added)
    assert run("accounts", "add", "x", "AcmeCare") == added  # the same account, not a second
    assert re.fullmatch(r"account \d+: x @Other\n", run("accounts", "add", "X", "Other"))
    refused = run("accounts", "add", "myspace", "tom", code=2)
    assert "error: unknown platform 'myspace'; known: bluesky, mastodon, replay, x" in refused
    assert re.fullmatch(
        r"account \d+: mastodon @care\n", run("accounts", "add", "mastodon", "care")
    )
    bsky = run("accounts", "add", "bluesky", "@Acme.BSKY.social")
    assert re.fullmatch(r"account \d+: bluesky @acme\.bsky\.social\n", bsky)
    assert "takes one HANDLE" in run("accounts", "add", "x", "a", "b", code=2)
    for old in ("add-x", "add-mastodon", "add-bluesky", "add-replay"):
        assert "No such command" in run("accounts", old, "care", code=2)


def test_poll_once_and_sources_status_show_what_was_ingested_and_what_it_cost(x, api, model):
    s, account_id = x
    api.release(40)
    assert "stored 40 new posts" in run("poll", BRAND, "--once")
    assert "stored 0 new posts" in run("poll", str(account_id), "--once")

    [row] = json.loads(run("sources", "status", "--format", "json"))

    assert set(row) == set(COLUMNS)
    assert (row["platform"], row["handle"], row["state"]) == ("x", BRAND, "ok")
    assert row["posts"] == row["last_hour"] == 40
    assert row["reads_today"] == row["reads_month"] == 40
    assert 0 < row["requests_left"] < api.rate_limit
    assert row["reset"] and row["last_poll"] and row["lag_s"] is not None and row["lag_s"] >= 0
    assert row["projected_cost"] >= 40 * s.x_cost_per_read
    assert row["incidents"] == [] and row["last_error"] is None
    table = run("sources", "status")
    assert table.splitlines()[0].split()[:4] == ["id", "platform", "handle", "state"]
    assert BRAND in table.splitlines()[1]


def test_a_failed_poll_exits_1_and_a_skipped_one_75_saying_why(x, api, model):
    from socialcare.ingest.policy import lease_name
    from socialcare.leases import hold_lease

    s, account_id = x
    api.release(10)
    api.faults, api.fault_kinds = 1.0, ("500",)
    failed = run("poll", str(account_id), "--once", code=1)
    assert "stored 0 new posts" not in failed
    [line] = failed.splitlines()
    assert line.startswith(f"error: poll of account {account_id} failed") and "500" in line

    api.faults = 0.0
    with session_scope(s) as session:
        session.get(Account, account_id).next_poll_at = None
        assert hold_lease(
            session=session, name=lease_name(account_id), holder="other", seconds=60, now=utcnow()
        )
    requests = sum(api.requests.values())
    skipped = run("poll", BRAND, "--once", code=75)
    assert skipped == f"poll skipped: another worker holds the poll:{account_id} lease\n"
    assert sum(api.requests.values()) == requests  # no request was made

    with session_scope(s) as session:
        session.get(Account, account_id).active = False
    assert f"account {account_id} is paused" in run("poll", str(account_id), "--once", code=75)
    assert run("poll", "99999", "--once", code=1) == "error: no account 99999\n"
    assert run("poll", "9223372036854775808", code=1) == "error: no account 9223372036854775808\n"


def test_an_account_that_misses_two_poll_intervals_raises_one_alert_until_it_polls(x, api):
    s, account_id = x
    first_poll(api, s, account_id)
    with session_scope(s) as session:
        acct = session.get(Account, account_id)
        acct.last_polled_at = utcnow() - timedelta(seconds=3 * 60 + s.step_grace_seconds)
        acct.poll_interval_seconds = 60

    assert flows.sweep(enqueue=InlineRunner(s), settings=s)["late_accounts"] == 1
    flows.sweep(enqueue=InlineRunner(s), settings=s)
    with session_scope(s) as session:
        [alert] = ingestion.open_incidents(session=session, account_id=account_id)
    assert alert.kind == "missed_polls" and alert.severity == "error"
    [row] = json.loads(run("sources", "status", "--format", "json"))
    assert row["state"] == "late" and row["incidents"] == ["missed_polls"]

    flows.poll_account(account_id, enqueue=InlineRunner(s), settings=s)
    with session_scope(s) as session:
        assert ingestion.open_incidents(session=session, account_id=account_id) == []


def test_reply_inline_exits_0_only_when_the_reply_was_published(x, api, model):
    from socialcare.cases.models import Reply

    s, account_id = x
    api.release(5)
    run("poll", str(account_id), "--once")
    run("agents", "add", "ana")
    case_id = int(re.search(r"case #(\d+)", run("claim-next", "--agent", "ana")).group(1))

    api.revoked = True
    failed = run("reply", str(case_id), "--agent", "ana", "--text", "Hello?", "--inline", code=1)
    [line] = failed.splitlines()
    assert re.fullmatch(r"error: reply #\d+ failed: .*401.*", line), line

    api.revoked = False
    api.faults, api.fault_kinds = 1.0, ("429",)  # refused before anything was posted
    later = run("reply", str(case_id), "--agent", "ana", "--text", "On it!", "--inline", code=75)
    [line] = later.splitlines()
    assert re.fullmatch(r"error: reply #\d+ not sent yet \(again at .+\): .*", line), line
    with session_scope(s) as session:
        states = sorted(session.execute(select(Reply.state)).scalars())
    assert states == ["failed", "queued"]
    assert api.creates == []  # nothing was posted
