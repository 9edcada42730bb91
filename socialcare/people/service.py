"""People, teams and API tokens (services: they take the session, never commit); logging in and
its sessions are in socialcare.people.logins.

The command line, the pages and the API all add people and teams, change who is in a team and
find a person by handle through these functions. Handles are kept in lower case and looked up
case-insensitively (as on X): `Ana`, ` ana ` and `ana` are one person."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from socialcare.auth.passwords import (
    digest,
    generate_password,
    hash_password,
    new_secret,
)
from socialcare.auth.roles import Role, parse_role
from socialcare.cases.events import CLI, record
from socialcare.db import utcnow
from socialcare.errors import Conflict, NotFound
from socialcare.people.models import Agent, ApiToken, Team, WebSession

HANDLE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
TOKEN_PREFIX = "sc_"
# A session's last_seen_at (and its sliding expiry) is written at most this often.
TOUCH_EVERY = timedelta(minutes=1)
# API tokens expire: TOKEN_TTL unless their creator chose otherwise, at most TOKEN_MAX_TTL.
TOKEN_TTL = timedelta(days=90)
TOKEN_MAX_TTL = timedelta(days=365)


def normalise_handle(handle: str) -> str:
    """A handle as stored: lower case; ValueError if it has characters a handle may not."""
    value = handle.strip().lower()
    if not HANDLE_RE.match(value):
        raise ValueError(
            "a handle is 1-64 characters: letters, digits, '_', '.', '-' (starting with a "
            f"letter or digit); got {handle!r}"
        )
    return value


def team_named(*, session: Session, name: str) -> Team:
    """The team with this name (exactly as written); NotFound otherwise."""
    team = session.execute(select(Team).where(Team.name == name)).scalar_one_or_none()
    if team is None:
        raise NotFound(f"no team {name!r}")
    return team


def teams_named(*, session: Session, names: list[str]) -> list[Team]:
    """The teams with these names; NotFound naming the first unknown one."""
    return [team_named(session=session, name=name) for name in names]


def add_team(*, session: Session, name: str, actor: str) -> Team:
    """A new, empty team (a queue of its own); ValueError for a blank name, Conflict when the
    name is taken; audited as `team_added`."""
    name = name.strip()
    if not name:
        raise ValueError("a team needs a name")
    if session.execute(select(Team.id).where(Team.name == name)).first() is not None:
        raise Conflict(f"team {name!r} exists")
    team = Team(name=name, skills=[], sla_seconds={}, calendar={})
    session.add(team)
    session.flush()
    record(session, actor=actor, kind="team_added", team=name)
    return team


def set_members(*, session: Session, team_name: str, handles: list[str], actor: str) -> Team:
    """Make exactly these people the team's members; NotFound for an unknown team or handle
    (nothing changes then); audited as `team_members_set` with the members after."""
    team = team_named(session=session, name=team_name)
    members = []
    for handle in handles:
        agent = agent_by_handle(session=session, handle=handle)
        if agent is None:
            raise NotFound(f"no agent {handle!r}")
        if agent not in members:
            members.append(agent)
    team.agents = members
    session.flush()
    record(
        session,
        actor=actor,
        kind="team_members_set",
        team=team.name,
        members=sorted(a.handle for a in members),
    )
    return team


def change_members(
    *, session: Session, team_name: str, handles: list[str], join: bool, actor: str
) -> Team:
    """Put these people in the team (join) or take them out, keeping the other members: the
    members set through set_members."""
    team = team_named(session=session, name=team_name)
    current = [a.handle for a in team.agents]
    named = [_known_handle(session, h) for h in handles]
    if join:
        wanted = current + [h for h in named if h not in current]
    else:
        wanted = [h for h in current if h not in named]
    return set_members(session=session, team_name=team.name, handles=wanted, actor=actor)


def _known_handle(session: Session, handle: str) -> str:
    agent = agent_by_handle(session=session, handle=handle)
    if agent is None:
        raise NotFound(f"no agent {handle!r}")
    return agent.handle


def agent_by_handle(*, session: Session, handle: str) -> Agent | None:
    """The person with this handle, found as the login finds them (surrounding spaces and case
    ignored); None for no one, or for text that cannot be a handle."""
    try:
        key = normalise_handle(handle)
    except ValueError:
        return None
    return session.execute(select(Agent).where(Agent.handle == key)).scalar_one_or_none()


def add_agent(
    *,
    session: Session,
    handle: str,
    role: str = "agent",
    display_name: str | None = None,
    password: str | None = None,
    teams: list[str] | None = None,
    actor: str = CLI,
    can_log_in: bool = True,
) -> tuple[Agent, str | None]:
    """Create a person in the named teams (none when None or empty); Conflict when the handle is
    taken, NotFound for an unknown team; audited as `agent_added`. Returns them and the generated
    password when none was given. can_log_in=False gives them no password at all (they log in
    once one is set), for people seeded before anyone could choose one."""
    handle = normalise_handle(handle)
    parsed = parse_role(role)
    if agent_by_handle(session=session, handle=handle) is not None:
        raise Conflict(f"agent {handle!r} already exists")
    generated = None
    if password is None and can_log_in:
        generated = password = generate_password()
    agent = Agent(
        handle=handle,
        display_name=(display_name or handle).strip()[:128] or handle,
        role=parsed.value,
        password_hash=hash_password(password) if password is not None else None,
        active=True,
    )
    agent.teams = teams_named(session=session, names=teams or [])
    session.add(agent)
    session.flush()
    record(session, actor=actor, kind="agent_added", handle=handle, role=parsed.value)
    return agent, generated


def set_password(*, session: Session, agent: Agent, password: str, actor: str) -> None:
    """Set a new password; every session of the agent ends (a reset must lock others out)."""
    agent.password_hash = hash_password(password)
    agent.failed_logins = 0
    agent.locked_until = None
    session.execute(delete(WebSession).where(WebSession.agent_id == agent.id))
    record(session, actor=actor, kind="password_set", handle=agent.handle)


def set_active(*, session: Session, agent: Agent, active: bool, actor: str) -> None:
    """Disable (ending every session and token) or enable an agent."""
    agent.active = active
    if not active:
        session.execute(delete(WebSession).where(WebSession.agent_id == agent.id))
        session.execute(
            update(ApiToken)
            .where(ApiToken.agent_id == agent.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    record(
        session,
        actor=actor,
        kind="agent_enabled" if active else "agent_disabled",
        handle=agent.handle,
    )


def create_token(
    *,
    session: Session,
    agent: Agent,
    name: str,
    actor: str,
    expires_in: timedelta = TOKEN_TTL,
    now: datetime | None = None,
) -> tuple[str, ApiToken]:
    """A new API token for agent, valid for expires_in (1 day to TOKEN_MAX_TTL); returns the
    secret (shown once) and the row."""
    name = name.strip()
    if not name or len(name) > 128:
        raise ValueError("a token needs a name of 1-128 characters")
    if not timedelta(days=1) <= expires_in <= TOKEN_MAX_TTL:
        raise ValueError(f"a token lasts 1 to {TOKEN_MAX_TTL.days} days")
    created = now or utcnow()
    secret = TOKEN_PREFIX + new_secret()
    row = ApiToken(
        agent_id=agent.id,
        name=name,
        token_hash=digest(secret),
        prefix=secret[:10],
        created_at=created,
        expires_at=created + expires_in,
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        kind="token_created",
        handle=agent.handle,
        token_id=row.id,
        expires_at=row.expires_at.isoformat(),
    )
    return secret, row


def _live_token(session: Session, secret: str, now: datetime) -> ApiToken | None:
    """The token row of secret while it is neither revoked nor expired."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    row = session.execute(
        select(ApiToken).where(ApiToken.token_hash == digest(secret))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    return row


def token_agent(*, session: Session, secret: str, now: datetime) -> Agent | None:
    """The active agent an unrevoked, unexpired API token acts as, or None."""
    row = _live_token(session, secret, now)
    if row is None:
        return None
    agent = session.get(Agent, row.agent_id)
    if agent is None or not agent.active:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        row.last_used_at = now
    return agent


def still_valid(*, session: Session, cookie: str | None, token: str | None, now: datetime) -> bool:
    """Whether a session cookie or API token still admits its agent (read only: a long request,
    such as the event stream, asks this again and again without sliding anything)."""
    agent_id: int | None = None
    if token is not None:
        row = _live_token(session, token, now)
        agent_id = row.agent_id if row is not None else None
    elif cookie:
        web = session.get(WebSession, digest(cookie), populate_existing=True)
        agent_id = web.agent_id if web is not None and web.expires_at > now else None
    if agent_id is None:
        return False
    active = session.execute(select(Agent.active).where(Agent.id == agent_id)).scalar_one_or_none()
    return bool(active)


@dataclass(frozen=True)
class TokenRow:
    token: ApiToken
    handle: str


def list_tokens(*, session: Session, agent: Agent | None) -> list[TokenRow]:
    """API tokens with their owners' handles: agent's own, or everyone's for agent=None."""
    stmt = select(ApiToken, Agent.handle).join(Agent, Agent.id == ApiToken.agent_id)
    if agent is not None:
        stmt = stmt.where(ApiToken.agent_id == agent.id)
    rows = session.execute(stmt.order_by(Agent.handle, ApiToken.id)).all()
    return [TokenRow(token, handle) for token, handle in rows]


def revoke_token(*, session: Session, token_id: int, by: Agent, may_manage: bool) -> ApiToken:
    """Revoke a token: one's own, or anyone's for those who manage people."""
    row = session.get(ApiToken, token_id)
    if row is None or (row.agent_id != by.id and not may_manage):
        raise NotFound(f"no token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        record(session, actor=f"agent:{by.handle}", kind="token_revoked", token_id=token_id)
    return row


def ensure_first_admin(*, session: Session) -> tuple[str, str] | None:
    """When nobody could administer the system, create `admin` with a generated password.

    Returns (handle, password) to print once, or None when an active admin exists. Nothing
    ships with a default password."""
    exists = session.execute(
        select(Agent.id).where(Agent.role == Role.ADMIN.value, Agent.active.is_(True))
    ).first()
    if exists is not None:
        return None
    handle = "admin"
    taken = agent_by_handle(session=session, handle=handle)
    if taken is not None:
        password = generate_password()
        taken.role = Role.ADMIN.value
        taken.active = True
        set_password(session=session, agent=taken, password=password, actor="setup")
        return handle, password
    _, generated = add_agent(session=session, handle=handle, role="admin", actor="setup")
    assert generated is not None
    return handle, generated
