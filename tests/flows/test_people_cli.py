"""People and teams from the command line: passwords shown once that log in, tokens that work
until the person is disabled, team membership."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from socialcare.cli import app
from socialcare.db import session_scope, utcnow
from socialcare.errors import LoginFailed
from socialcare.people.logins import LoginPolicy, authenticate
from socialcare.people.models import Agent, Team
from socialcare.people.service import token_agent


def run(*args: str, input: str | None = None, ok: bool = True) -> str:
    result = CliRunner().invoke(app, list(args), input=input)
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    else:
        assert result.exit_code != 0, result.output
    return result.output


def _login(settings, handle: str, password: str) -> Agent:
    with session_scope(settings) as s:
        return authenticate(
            session=s, handle=handle, password=password, now=utcnow(), policy=LoginPolicy()
        )


def test_a_new_agents_generated_password_logs_in_and_a_reset_replaces_it(engine, settings):
    out = run("agents", "add", "Rosa", "--role", "lead", "--team", "care")
    password = re.search(r"password \(shown once\): (\S+)", out).group(1)
    assert _login(settings, "rosa", password).role == "lead"  # handles are kept lower case
    with pytest.raises(LoginFailed):
        _login(settings, "rosa", password + "x")
    reset = run("agents", "password", "rosa")
    fresh = re.search(r"password \(shown once\): (\S+)", reset).group(1)
    assert fresh != password
    with pytest.raises(LoginFailed):
        _login(settings, "rosa", password)
    assert _login(settings, "rosa", fresh).handle == "rosa"


def test_a_password_from_stdin_is_used_and_never_printed(engine, settings):
    out = run("agents", "add", "sam", "--password-stdin", input="a long enough secret\n")
    assert "a long enough secret" not in out and "shown once" not in out
    assert _login(settings, "sam", "a long enough secret").handle == "sam"
    run("agents", "add", "tim", "--password-stdin", input="short\n", ok=False)


def test_a_token_works_until_its_agent_is_disabled(engine, settings):
    run("agents", "add", "ana")
    token = run("agents", "token", "ana", "--name", "crm sync").strip()
    assert token.startswith("sc_")
    with session_scope(settings) as s:
        assert token_agent(session=s, secret=token, now=utcnow()).handle == "ana"
    run("agents", "disable", "ana")
    with session_scope(settings) as s:
        assert token_agent(session=s, secret=token, now=utcnow() + timedelta(minutes=2)) is None
    run("agents", "enable", "ana")
    with session_scope(settings) as s:  # enabling does not bring a revoked token back
        assert token_agent(session=s, secret=token, now=utcnow()) is None
    assert re.search(r"ana\s+agent\s+active", run("agents", "list"))


def test_teams_are_added_and_people_join_and_leave_them(engine, settings):
    run("agents", "add", "ana", "--team", "care")
    run("teams", "add", "night-shift")
    run("teams", "add", "night-shift", ok=False)
    run("teams", "join", "night-shift", "ana")
    with session_scope(settings) as s:
        ana = s.execute(select(Agent).where(Agent.handle == "ana")).scalar_one()
        assert {t.name for t in ana.teams} == {"care", "night-shift"}
    run("teams", "leave", "night-shift", "ana")
    run("teams", "join", "no-such-team", "ana", ok=False)
    with session_scope(settings) as s:
        ana = s.execute(select(Agent).where(Agent.handle == "ana")).scalar_one()
        assert {t.name for t in ana.teams} == {"care"}
        assert s.execute(select(Team).where(Team.name == "night-shift")).scalar_one()
