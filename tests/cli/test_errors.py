"""A command that cannot do what it was asked exits non-zero with one clear line on stderr (no
traceback) and changes nothing."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from socialcare.cases.models import Case, Event
from socialcare.db import utcnow
from socialcare.ingest.policy import lease_name
from socialcare.leases import hold_lease
from socialcare.people.models import Team
from socialcare.posts.models import Account
from tests.cli.shell import EX_TEMPFAIL, Shell


def _counts(shell: Shell) -> tuple[int, int, int]:
    with shell.db() as s:
        return (
            s.scalar(select(func.count()).select_from(Event)),
            s.scalar(select(func.count()).select_from(Team)),
            s.scalar(select(func.count()).select_from(Case).where(Case.status == "queued")),
        )


def test_ids_no_row_can_have_are_no_such_row(shell: Shell) -> None:
    """2^31 is past PostgreSQL's INTEGER, 2^63 past every integer SQLite stores."""
    before = _counts(shell)
    lines = shell.fails_all(
        [
            ("show", "9223372036854775808"),
            ("resolve", "2147483648", "--agent", "demo"),
            ("reply-retry", "9223372036854775808", "--agent", "demo"),
            ("poll", "2147483648", "--once"),
            ("show", "424242"),
        ]
    )
    assert lines == [
        "error: no case 9223372036854775808",
        "error: no case 2147483648",
        "error: no reply 9223372036854775808",
        "error: no account 2147483648",
        "error: no case 424242",
    ]
    assert _counts(shell) == before


def test_an_agent_acts_only_on_the_cases_they_hold(shell: Shell) -> None:
    shell.run_all([("agents", "add", "ana"), ("agents", "add", "ben")])
    held = int(re.search(r"#(\d+)", shell.run("claim-next", "--agent", "ana").out)[1])
    with shell.db() as s:
        unheld = s.scalar(select(Case.id).where(Case.status == "queued").limit(1))
    before = _counts(shell)
    refusals = [
        ("claim", str(held), "--agent", "ben"),
        ("resolve", str(held), "--agent", "ben"),
        ("reply", str(held), "--agent", "ben", "--text", "hello"),
        ("escalate", str(unheld), "--agent", "ben", "--reason", "not mine"),
        ("dismiss", str(unheld), "--agent", "ben", "--reason", "spam"),
        ("resolve", str(held), "--agent", "nobody"),
    ]
    lines = shell.fails_all(refusals)
    for args, line in zip(refusals[:-1], lines[:-1], strict=True):
        assert re.fullmatch(rf"error: .*case {args[1]}\b.*", line), line
    assert lines[0] == f"error: case {held} is already claimed by ana"
    assert lines[-1] == "error: no active agent 'nobody'"
    assert _counts(shell) == before
    with shell.db() as s:
        assert s.get(Case, unheld).status == "queued" and s.get(Case, held).status == "claimed"


def test_an_unknown_team_is_an_error_naming_the_teams_and_nothing_is_made(shell: Shell) -> None:
    held = int(re.search(r"#(\d+)", shell.run("claim-next", "--agent", "demo").out)[1])
    before = _counts(shell)
    escalate, claim_next, queue = shell.fails_all(
        [
            ("escalate", str(held), "--agent", "demo", "--team", "swta", "--reason", "x"),
            ("claim-next", "--agent", "demo", "--team", "swta"),
            ("queue", "--team", "swta"),
        ]
    )
    assert escalate == "error: no team 'swta'; teams: billing, care, swat, tech"
    assert claim_next == queue == escalate
    assert _counts(shell) == before
    with shell.db() as s:
        assert s.get(Case, held).status == "claimed"


def test_a_poll_that_makes_no_request_says_why_and_exits_75(shell: Shell) -> None:
    added = shell.run("accounts", "add", "x", "AcmeCare").out
    account_id = int(re.fullmatch(r"account (\d+): x @AcmeCare\n", added)[1])
    with shell.db() as s:
        assert hold_lease(
            session=s, name=lease_name(account_id), holder="worker-1", seconds=600, now=utcnow()
        )
        s.commit()
    line = shell.fails("poll", str(account_id), "--once", code=EX_TEMPFAIL)
    assert line == f"poll skipped: another worker holds the poll:{account_id} lease"
    with shell.db() as s:
        s.get(Account, account_id).active = False
        s.commit()
    line = shell.fails("poll", "--account", str(account_id), "--once", code=EX_TEMPFAIL)
    assert line == f"poll skipped: account {account_id} is paused"


def test_bad_input_is_one_line_with_exit_2(sqlite_shell: Shell) -> None:
    lines = sqlite_shell.fails_all(
        [
            ("accounts", "add", "myspace", "tom"),
            ("latency", "--format", "xlsx"),
            ("claim-next",),
            ("accounts", "add-x", "tom"),
            ("show", "twelve"),
        ],
        code=2,
    )
    assert lines[:3] == [
        "error: unknown platform 'myspace'; known: bluesky, mastodon, replay, x",
        "error: --format is table or csv, not 'xlsx'",
        "error: Missing option '--agent'.",
    ]
    assert lines[3].startswith("error: No such command 'add-x'")
    assert lines[4].startswith("error: Invalid value for 'CASE_ID'")
