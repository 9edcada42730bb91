"""One way to add a person and one way to find them by handle, on both databases: the command
line, first-run seeding and the API all add through socialcare.people.service.add_agent, and a
handle finds the same person wherever it is typed, as the login finds them."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from socialcare.cases.models import Event
from socialcare.cases.work import get_agent
from socialcare.cli import app
from socialcare.db import session_scope
from socialcare.errors import Conflict, NotFound
from socialcare.flows.seed import add_agent as seed_agent
from socialcare.flows.seed import ensure_demo_agent
from socialcare.people.models import Agent
from socialcare.people.service import add_agent, agent_by_handle
from socialcare.routing.service import ensure_default_teams


def added_events(session: Session) -> list[Event]:
    return list(
        session.scalars(select(Event).where(Event.kind == "agent_added").order_by(Event.id))
    )


@pytest.mark.parametrize("typed", ["ana", "Ana", " ANA "])
def test_a_handle_finds_the_same_person_wherever_it_is_typed(session: Session, typed: str) -> None:
    ana, _ = add_agent(session=session, handle="ana", actor="t")
    assert agent_by_handle(session=session, handle=typed) is ana
    assert get_agent(session=session, handle=typed) is ana


@pytest.mark.parametrize("typed", ["bob", "not a handle!", ""])
def test_a_handle_of_no_one_finds_no_one(session: Session, typed: str) -> None:
    add_agent(session=session, handle="ana", actor="t")
    assert agent_by_handle(session=session, handle=typed) is None
    with pytest.raises(NotFound):
        get_agent(session=session, handle=typed)


def test_first_run_seeding_adds_the_demo_lead_through_the_people_service(
    session: Session,
) -> None:
    demo = ensure_demo_agent(session=session)
    assert demo is not None
    assert (demo.handle, demo.role, demo.password_hash) == ("demo", "lead", None)
    every = sorted(t.name for t in ensure_default_teams(session=session))
    assert sorted(t.name for t in demo.teams) == every
    [event] = added_events(session)
    assert (event.actor, event.data) == ("setup", {"handle": "demo", "role": "lead"})
    assert ensure_demo_agent(session=session) is None  # someone exists: nothing more is seeded
    with pytest.raises(Conflict):
        seed_agent(session=session, handle="Demo", display_name="Again", role="agent", teams=None)
    with pytest.raises(NotFound):
        seed_agent(session=session, handle="new", display_name="New", role="agent", teams=["x"])


def test_seeding_puts_a_person_in_the_teams_asked_for(session: Session) -> None:
    ensure_default_teams(session=session)
    ana = seed_agent(
        session=session, handle="ana", display_name="Ana", role="agent", teams=["care"]
    )
    assert [t.name for t in ana.teams] == ["care"]


def run(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(app, list(args))
    assert (result.exit_code == 0) is ok, result.output + repr(result.exception)
    return result.output


def test_the_command_line_adds_through_the_service_and_finds_people_as_the_login_does(
    engine, settings
) -> None:
    run("agents", "add", "ana")
    refused = run("agents", "add", "Ana", ok=False)
    assert "error: agent 'ana' already exists" in refused
    run("agents", "add", "ben", "--team", "care")
    with session_scope(settings) as s:
        assert [(e.actor, e.data["handle"]) for e in added_events(s)] == [
            ("cli", "ana"),
            ("cli", "ben"),
        ]
        teams = {a.handle: sorted(t.name for t in a.teams) for a in s.scalars(select(Agent))}
        every = sorted(t.name for t in ensure_default_teams(session=s))
    assert teams == {"ana": every, "ben": ["care"]}  # no --team: every team, as before
    run("agents", "disable", "ANA")
    run("agents", "token", "Ben", "--name", "crm")
    with session_scope(settings) as s:
        ana = agent_by_handle(session=s, handle="ana")
        assert ana is not None and ana.active is False
