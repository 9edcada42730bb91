"""One way to add a team and to change who is in it, on both databases: the API and the command
line both go through socialcare.people.service (add_team, set_members), with the same refusals,
the same case-insensitive handles and the same audit events."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from socialcare.cases.models import Event
from socialcare.cli import app as cli
from socialcare.config import Settings
from socialcare.db import session_scope
from socialcare.errors import Conflict, NotFound
from socialcare.people.models import Team
from socialcare.people.service import add_agent, add_team, change_members, set_members
from socialcare.web import create_app
from tests.web.signin import sign_in


def events(session: Session, *kinds: str) -> list[tuple[str, str, dict]]:
    rows = session.scalars(select(Event).where(Event.kind.in_(kinds)).order_by(Event.id))
    return [(e.actor, e.kind, dict(e.data)) for e in rows]


def members(session: Session, name: str) -> list[str]:
    session.expire_all()
    team = session.scalars(select(Team).where(Team.name == name)).one()
    return sorted(a.handle for a in team.agents)


def test_a_team_is_added_once_with_a_name(session: Session) -> None:
    team = add_team(session=session, name="  returns ", actor="t")
    assert (team.name, team.agents, team.skills) == ("returns", [], [])
    with pytest.raises(Conflict, match="team 'returns' exists"):
        add_team(session=session, name="returns", actor="t")
    with pytest.raises(ValueError, match="a team needs a name"):
        add_team(session=session, name="   ", actor="t")
    assert events(session, "team_added") == [("t", "team_added", {"team": "returns"})]


def test_members_are_set_exactly_by_handles_typed_in_any_case(session: Session) -> None:
    add_team(session=session, name="returns", actor="t")
    for handle in ("ana", "ben", "cy"):
        add_agent(session=session, handle=handle, actor="t")
    set_members(session=session, team_name="returns", handles=["ANA", " ben", "ana"], actor="t")
    assert members(session, "returns") == ["ana", "ben"]
    change_members(session=session, team_name="returns", handles=["Cy"], join=True, actor="t")
    change_members(session=session, team_name="returns", handles=["ana"], join=False, actor="t")
    assert members(session, "returns") == ["ben", "cy"]
    assert [data["members"] for _, _, data in events(session, "team_members_set")] == [
        ["ana", "ben"],
        ["ana", "ben", "cy"],
        ["ben", "cy"],
    ]


def test_an_unknown_handle_or_team_changes_nothing(session: Session) -> None:
    add_team(session=session, name="returns", actor="t")
    add_agent(session=session, handle="ana", actor="t")
    set_members(session=session, team_name="returns", handles=["ana"], actor="t")
    with pytest.raises(NotFound, match="no agent 'zed'"):
        set_members(session=session, team_name="returns", handles=["zed"], actor="t")
    with pytest.raises(NotFound, match="no agent 'zed'"):
        change_members(session=session, team_name="returns", handles=["zed"], join=True, actor="t")
    with pytest.raises(NotFound, match="no team 'nope'"):
        set_members(session=session, team_name="nope", handles=["ana"], actor="t")
    assert members(session, "returns") == ["ana"]


@pytest.fixture
def api(settings: Settings, engine: object, session: Session) -> Iterator[TestClient]:
    with TestClient(create_app(settings, enqueue=lambda *args: None)) as client:
        sign_in(client, session, "boss", "admin")
        yield client


def test_the_api_and_the_command_line_change_teams_the_same_way(
    api: TestClient, settings: Settings
) -> None:
    with session_scope(settings) as s:
        for handle in ("ana", "ben"):
            add_agent(session=s, handle=handle, teams=[], actor="t")
    assert api.post("/api/teams", json={"name": "returns"}).status_code == 201
    refused = CliRunner().invoke(cli, ["teams", "add", "returns"])
    assert refused.exit_code == 1
    assert "error: team 'returns' exists" in refused.output
    assert api.post("/api/teams", json={"name": "returns"}).status_code == 409
    added = CliRunner().invoke(cli, ["teams", "add", "refunds"])
    assert added.exit_code == 0, added.output
    assert api.post("/api/teams", json={"name": " "}).status_code == 422

    answer = api.put("/api/teams/returns/members", json={"handles": ["ANA"]})
    assert answer.status_code == 200
    assert answer.json() == {"name": "returns", "members": ["ana"]}
    joined = CliRunner().invoke(cli, ["teams", "join", "returns", "Ben"])
    assert joined.exit_code == 0, joined.output
    assert api.put("/api/teams/returns/members", json={"handles": ["zed"]}).status_code == 404
    unknown = CliRunner().invoke(cli, ["teams", "join", "returns", "zed"])
    assert unknown.exit_code == 1
    assert "error: no agent 'zed'" in unknown.output

    listed = {t["name"]: t["members"] for t in api.get("/api/teams").json()}
    assert listed["returns"] == ["ana", "ben"]
    assert listed["refunds"] == []
    with session_scope(settings) as s:
        assert events(s, "team_added", "team_members_set") == [
            ("agent:boss", "team_added", {"team": "returns"}),
            ("cli", "team_added", {"team": "refunds"}),
            ("agent:boss", "team_members_set", {"team": "returns", "members": ["ana"]}),
            ("cli", "team_members_set", {"team": "returns", "members": ["ana", "ben"]}),
        ]
