"""Teams in the database and the SLA of a routed case."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.cases.events import record
from socialcare.config import Settings
from socialcare.people.models import Team
from socialcare.routing.rules import (
    DEFAULT_LANGUAGES,
    DEFAULT_RULES,
    DEFAULT_TEAMS,
    FALLBACK_TEAM,
    RouteInput,
    Rule,
    route,
)

UNKNOWN_LANGUAGE = "und"


def ensure_default_teams(*, session: Session) -> list[Team]:
    """Create the default teams that are missing; returns all teams."""
    existing = {t.name for t in session.execute(select(Team)).scalars()}
    for name, skills in DEFAULT_TEAMS.items():
        if name not in existing:
            session.add(
                Team(name=name, skills=skills, sla_seconds={}, languages=list(DEFAULT_LANGUAGES))
            )
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


def team_languages(team: Team) -> set[str]:
    """The languages a team reads: its own list and its active agents'; empty: any."""
    if not team.languages:
        return set()
    agents = {code for a in team.agents if a.active for code in (a.languages or [])}
    return {str(code) for code in team.languages} | agents


def reads(team: Team, language: str) -> bool:
    """Whether someone in team reads posts in language (a team listing none reads any)."""
    known = team_languages(team)
    return not known or language in known


def choose_team(
    *,
    session: Session,
    inp: RouteInput,
    rules: tuple[Rule, ...] = DEFAULT_RULES,
    fallback: str = FALLBACK_TEAM,
    teams: dict[str, Team] | None = None,
) -> tuple[Team, str]:
    """The team a new case goes to, and why: the first matching rule's team when it reads the
    post's language (or the language is unknown); else the first team, by name, that lists the
    language; else one that reads any; else the fallback team, the reason saying so.

    teams, when given, is every team by name (a routing batch's, read once): looked up instead
    of the database, and given any team this call had to create."""
    known = teams if teams is not None else {}

    def named(name: str) -> Team:
        team = known.get(name) or team_by_name(session=session, name=name)
        known[team.name] = team
        return team

    name, reason = route(inp, rules)
    team = named(name)
    language = inp.language
    if not language or language == UNKNOWN_LANGUAGE or reads(team, language):
        return team, reason
    every = list(teams.values()) if teams is not None else session.scalars(select(Team))
    ordered = sorted(every, key=lambda t: t.name)
    listing = [t for t in ordered if t.languages and language in team_languages(t)]
    anyone = [t for t in ordered if not t.languages]
    other = next(iter((*listing, *anyone)), None)
    if other is not None:
        return other, f"language {language}: {team.name} does not read it, sent to {other.name}"
    other = named(fallback)
    return other, f"language {language}: no team reads it, sent to {other.name}"


def set_languages(*, session: Session, team: Team, languages: list[str], actor: str) -> None:
    """Set the languages a team reads (ISO 639-1 codes; empty: any), recorded as an event."""
    team.languages = list(languages)
    record(session, actor=actor, kind="team_languages", team=team.name, languages=team.languages)
