"""The people endpoints of the JSON API: agents, teams and API tokens, through the one people
service (socialcare.people.service) the command line uses too."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.auth.roles import Permission
from socialcare.errors import Forbidden
from socialcare.people import service as people
from socialcare.people.models import Agent, ApiToken, Team
from socialcare.web import api_models as m
from socialcare.web.api import api_errors, fails
from socialcare.web.deps import SessionDep, request_now
from socialcare.web.params import RowId
from socialcare.web.security import PeopleManager, QueueReader

router = APIRouter(prefix="/api", responses=fails(400, 401, 403))


def agent_out(a: Agent) -> m.AgentOut:
    return m.AgentOut(
        handle=a.handle,
        display_name=a.display_name,
        role=a.role,
        active=bool(a.active),
        teams=sorted(t.name for t in a.teams),
        last_login_at=a.last_login_at,
    )


@router.get("/agents", response_model=list[m.AgentOut])
def list_agents(session: SessionDep, actor: PeopleManager) -> list[m.AgentOut]:
    return [agent_out(a) for a in session.scalars(select(Agent).order_by(Agent.handle))]


@router.post("/agents", response_model=m.AgentCreated, status_code=201, responses=fails(404, 409))
def add_agent(session: SessionDep, actor: PeopleManager, body: m.AgentIn) -> m.AgentCreated:
    """Add a person; without a password one is generated and returned once."""
    with api_errors():
        agent, generated = people.add_agent(
            session=session,
            handle=body.handle,
            role=body.role,
            display_name=body.display_name,
            password=body.password,
            teams=body.teams,
            actor=actor.label,
        )
    session.commit()
    return m.AgentCreated(**agent_out(agent).model_dump(), password=generated)


def _agent(session: Session, handle: str) -> Agent:
    agent = people.agent_by_handle(session=session, handle=handle)
    if agent is None:
        raise HTTPException(404, f"no agent {handle!r}")
    return agent


@router.post("/agents/{handle}/disable", response_model=m.AgentOut, responses=fails(404, 409))
def disable_agent(session: SessionDep, actor: PeopleManager, handle: str) -> m.AgentOut:
    """Disable a person: their sessions end and their tokens are revoked."""
    agent = _agent(session, handle)
    if agent.id == actor.agent.id:
        raise HTTPException(409, "you cannot disable yourself")
    people.set_active(session=session, agent=agent, active=False, actor=actor.label)
    session.commit()
    return agent_out(agent)


@router.post("/agents/{handle}/enable", response_model=m.AgentOut, responses=fails(404))
def enable_agent(session: SessionDep, actor: PeopleManager, handle: str) -> m.AgentOut:
    agent = _agent(session, handle)
    people.set_active(session=session, agent=agent, active=True, actor=actor.label)
    session.commit()
    return agent_out(agent)


def team_out(t: Team) -> m.TeamOut:
    return m.TeamOut(name=t.name, members=sorted(a.handle for a in t.agents))


@router.get("/teams", response_model=list[m.TeamOut])
def list_teams(session: SessionDep, actor: QueueReader) -> list[m.TeamOut]:
    return [team_out(t) for t in session.scalars(select(Team).order_by(Team.name))]


@router.post("/teams", response_model=m.TeamOut, status_code=201, responses=fails(409))
def add_team(session: SessionDep, actor: PeopleManager, body: m.TeamIn) -> m.TeamOut:
    with api_errors():
        team = people.add_team(session=session, name=body.name, actor=actor.label)
    session.commit()
    return team_out(team)


@router.put("/teams/{name}/members", response_model=m.TeamOut, responses=fails(404))
def set_members(
    session: SessionDep, actor: PeopleManager, name: str, body: m.MembersIn
) -> m.TeamOut:
    """Set who is in a team."""
    with api_errors():
        team = people.set_members(
            session=session, team_name=name, handles=body.handles, actor=actor.label
        )
    session.commit()
    return team_out(team)


def token_out(t: ApiToken, handle: str) -> m.TokenOut:
    return m.TokenOut(
        id=t.id,
        name=t.name,
        prefix=t.prefix,
        agent=handle,
        created_at=t.created_at,
        expires_at=t.expires_at,
        last_used_at=t.last_used_at,
        revoked_at=t.revoked_at,
    )


@router.get("/tokens", response_model=list[m.TokenOut])
def list_tokens(
    session: SessionDep,
    actor: QueueReader,
    everyone: Annotated[bool, Query(description="every person's tokens (admins)")] = False,
) -> list[m.TokenOut]:
    """One's own API tokens; with everyone=true, every person's (admins only)."""
    if everyone and not actor.can(Permission.PEOPLE_MANAGE):
        raise Forbidden(f"your role ({actor.agent.role}) may not list other people's tokens")
    rows = people.list_tokens(session=session, agent=None if everyone else actor.agent)
    return [token_out(r.token, r.handle) for r in rows]


@router.post("/tokens", response_model=m.TokenCreated, status_code=201)
def create_token(
    request: Request, session: SessionDep, actor: QueueReader, body: m.TokenIn
) -> m.TokenCreated:
    """A new token acting as oneself, made from a logged-in session (a token cannot make
    tokens, so revoking one leaves no other behind); its secret is in this answer only."""
    if actor.via != "session":
        raise Forbidden("API tokens are made from a logged-in session, not with a token")
    with api_errors():
        secret, row = people.create_token(
            session=session,
            agent=actor.agent,
            name=body.name,
            actor=actor.label,
            expires_in=timedelta(days=body.expires_in_days),
            now=request_now(request),
        )
    session.commit()
    return m.TokenCreated(**token_out(row, actor.agent.handle).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", status_code=204, responses=fails(404))
def revoke_token(session: SessionDep, actor: QueueReader, token_id: RowId) -> None:
    """Revoke one of one's own tokens, or anyone's (admins)."""
    with api_errors():
        people.revoke_token(
            session=session,
            token_id=token_id,
            by=actor.agent,
            may_manage=actor.can(Permission.PEOPLE_MANAGE),
        )
    session.commit()
