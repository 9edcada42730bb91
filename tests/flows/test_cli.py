"""The care team's command line, driven as a person would, on both databases."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import select
from typer.testing import CliRunner

from socialcare.cases.models import Case, Reply
from socialcare.cli import app
from socialcare.db import session_scope
from tests.conftest import SHARED_DATA

HEAD = SHARED_DATA / "twcs" / "twcs_head_1000.csv"


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_import_claim_reply_resolve_and_measure_from_the_command_line(engine, settings, model):
    assert "stored 994 posts" in run("import", "twcs", str(HEAD))
    run("agents", "add", "ana", "--name", "Ana", "--team", "care", "--team", "swat")
    assert re.search(
        r"ana\s+agent\s+active\s+care,swat|ana\s+agent\s+active\s+swat,care", run("agents", "list")
    )
    queue = run("queue", "--limit", "5")
    assert "open cases" in queue
    claimed = run("claim-next", "--agent", "ana")
    case_id = int(re.search(r"case #(\d+)", claimed).group(1))
    with session_scope(settings) as s:
        case = s.get(Case, case_id)
        assert case.status == "claimed" and case.team_id is not None
    shown = run("show", str(case_id))
    assert "urgency" in shown and "negativity=" in shown
    out = run("reply", str(case_id), "--agent", "ana", "--text", "So sorry, DM us?", "--inline")
    assert "sent" in out
    run("resolve", str(case_id), "--agent", "ana", "--reason", "answered")
    with session_scope(settings) as s:
        case = s.get(Case, case_id)
        assert case.status == "resolved" and case.first_response_at is not None
        replies = s.execute(select(Reply).where(Reply.case_id == case_id)).scalars().all()
        assert [r.state for r in replies] == ["sent"]
    table = list(csv.DictReader(io.StringIO(run("latency", "--by", "brand", "--format", "csv"))))
    brands = {row["group"] for row in table}
    assert {"AmazonHelp", "AppleSupport", "sprintcare"} <= brands
    assert all(int(r["answered"]) + int(r["unanswered"]) == int(r["cases"]) for r in table)


def test_acting_on_a_case_someone_else_holds_is_a_clear_error(engine, settings, model):
    run("import", "twcs", str(HEAD))
    run("agents", "add", "ana")
    run("agents", "add", "ben")
    case_id = int(re.search(r"case #(\d+)", run("claim-next", "--agent", "ana")).group(1))
    result = CliRunner().invoke(app, ["claim", str(case_id), "--agent", "ben"])
    assert result.exit_code == 1
    assert result.output == f"error: case {case_id} is already claimed by ana\n"
    for action in (["resolve"], ["dismiss", "--reason", "spam"], ["escalate", "--reason", "x"]):
        refused = CliRunner().invoke(
            app, [*action[:1], str(case_id), "--agent", "ben", *action[1:]]
        )
        assert refused.exit_code == 1 and len(refused.output.splitlines()) == 1, refused.output
        assert refused.output.startswith("error: ") and "ana" in refused.output
    with session_scope(settings) as s:
        case = s.get(Case, case_id)
        assert case.status == "claimed" and not case.escalated


def test_a_failed_reply_is_listed_and_sent_again_by_a_person_once(engine, settings, session):
    from tests.factories import make_account, make_agent, make_case, make_post, make_reply

    account = make_account(session)
    root = make_post(session, account)
    agent = make_agent(session, "ana")
    case = make_case(session, account, root, status="claimed", claimed_by=agent.id)
    failed = make_reply(session, case, agent_id=agent.id, state="failed", last_error="403 gone")
    unknown = make_reply(session, case, "Second try", agent_id=agent.id, state="unknown")
    session.commit()
    listed = run("replies")
    assert f"reply #{failed.id}" in listed and "403 gone" in listed
    assert f"reply #{unknown.id}" in listed
    assert "sent" in run("reply-retry", str(failed.id), "--agent", "ana", "--inline")
    again = CliRunner().invoke(app, ["reply-retry", str(failed.id), "--agent", "ana", "--inline"])
    assert again.exit_code == 1
    [line] = again.output.splitlines()  # one clear line, no traceback
    assert line.startswith(f"error: reply {failed.id} is sent")
    with session_scope(settings) as s:
        states = {r.id: r.state for r in s.execute(select(Reply)).scalars()}
        published = s.execute(select(Reply.external_id).where(Reply.id == failed.id)).scalar_one()
    assert states == {failed.id: "sent", unknown.id: "unknown"}
    assert published is not None
    assert "no replies failed" in run("replies", "--state", "failed")
