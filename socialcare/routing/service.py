"""Teams in the database and the SLA of a routed case."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.routing.models import Team
from socialcare.routing.rules import DEFAULT_TEAMS


def ensure_default_teams(*, session: Session) -> list[Team]:
    """Create the default teams that are missing; returns all teams."""
    existing = {t.name for t in session.execute(select(Team)).scalars()}
    for name, skills in DEFAULT_TEAMS.items():
        if name not in existing:
            session.add(Team(name=name, skills=skills, sla_seconds={}))
    session.flush()
    return list(session.execute(select(Team).order_by(Team.name)).scalars())


def team_by_name(*, session: Session, name: str) -> Team:
    """The team called name, created if missing (rules may name teams not set up yet)."""
    team = session.execute(select(Team).where(Team.name == name)).scalar_one_or_none()
    if team is None:
        ensure_default_teams(session=session)
        team = session.execute(select(Team).where(Team.name == name)).scalar_one_or_none()
    if team is None:
        team = Team(name=name, skills=[], sla_seconds={})
        session.add(team)
        session.flush()
    return team


def sla_due(*, team: Team, priority: str, opened_at: datetime, settings: Settings) -> datetime:
    """opened_at plus the team's SLA for the priority (or the global one)."""
    seconds = (team.sla_seconds or {}).get(priority) or settings.sla_seconds[priority]
    return opened_at + timedelta(seconds=int(seconds))
