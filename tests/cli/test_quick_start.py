"""The README's Quick start, run line by line as written, on SQLite and PostgreSQL: each line
exits 0 and does what the README says it does."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from socialcare.cases.models import OPEN_STATUSES, Case, Reply
from socialcare.people.models import Agent
from socialcare.posts.models import Account
from tests.cli.conftest import SAMPLE_ROWS, Template
from tests.cli.readme import quick_start_commands
from tests.cli.shell import Shell


def test_a_new_database_is_set_up_by_db_upgrade_and_import_twcs(
    shell: Shell, templates: dict[str, Template]
) -> None:
    upgrade, imported, demo = templates[shell.backend].setup
    assert upgrade.out == "database is at the latest schema\n"
    stored, again, ignored = map(int, re.findall(r"\d+", imported.out.splitlines()[0]))
    assert (stored, again) == (stored, 0) and stored + ignored == SAMPLE_ROWS + 1
    assert re.search(r"done: \d+ batches scored and routed", imported.out)
    assert demo.out.startswith("lead demo added\npassword (shown once): ")
    with shell.db() as s:
        assert s.scalar(select(func.count()).select_from(Case)) > 10
        assert s.scalar(select(Agent.role).where(Agent.handle == "demo")) == "lead"
    # Running them again changes nothing.
    assert shell.run("db", "upgrade").out == upgrade.out
    assert "stored 0 posts" in shell.run("import", "twcs", imported.args[-1]).out


def test_the_quick_start_works_the_queue_as_written(shell: Shell) -> None:
    commands = quick_start_commands()
    assert [c[0] for c in commands] == [
        "queue",
        "claim-next",
        "show",
        "reply",
        "resolve",
        "latency",
    ], "the Quick start changed: say here what each new line must do"
    case_id = ""
    for words in commands:
        args = [case_id if w == "CASE_ID" else w for w in words]
        out = shell.run(*args).out
        with shell.db() as s:
            command = words[0]
            if command == "queue":
                open_cases = s.scalar(
                    select(func.count()).select_from(Case).where(Case.status.in_(OPEN_STATUSES))
                )
                assert out.endswith(f"of {open_cases} open cases\n")
                assert out.startswith("#")
            elif command == "claim-next":
                case_id = re.search(r"claimed case #(\d+)", out).group(1)
                case = s.get(Case, int(case_id))
                demo = s.scalar(select(Agent.id).where(Agent.handle == "demo"))
                assert case.status == "claimed" and case.claimed_by == demo
            elif command == "show":
                assert out.startswith(f"case #{case_id} claimed ")
                assert "urgency" in out
            elif command == "reply":
                reply = s.scalars(select(Reply).where(Reply.case_id == int(case_id))).one()
                assert out == f"reply #{reply.id}: queued for the worker\n"
                # No worker runs here: the reply waits in the outbox, its message with the broker.
                assert reply.state == "queued" and reply.text == args[-1]
                assert any((shell.data_dir / "broker" / "messages").iterdir())
            elif command == "resolve":
                assert out == f"case #{case_id} resolved\n"
                case = s.get(Case, int(case_id))
                assert case.status == "resolved" and case.close_reason == "answered"
            elif command == "latency":
                brands = {
                    handle
                    for handle in s.scalars(
                        select(Account.handle).join(Case, Case.account_id == Account.id)
                    )
                }
                groups = {line.split()[0] for line in out.splitlines()[2:]}
                assert groups == brands and len(brands) >= 3
