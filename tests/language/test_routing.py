"""choose_team: the rules pick a team, then the post's language decides whether it can keep it."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.cases.models import Event
from socialcare.routing.models import Agent, Team
from socialcare.routing.rules import RouteInput
from socialcare.routing.service import choose_team, ensure_default_teams, set_languages


def _inp(language: str | None, topic: str = "billing") -> RouteInput:
    return RouteInput(
        topic=topic,
        priority="P3",
        urgency=0.4,
        followers=10,
        verified=False,
        language=language,
    )


def _team(session: Session, name: str, languages: list[str]) -> Team:
    team = Team(name=name, skills=[], sla_seconds={}, calendar={}, languages=languages)
    session.add(team)
    session.flush()
    return team


def test_the_default_teams_read_english(session: Session) -> None:
    teams = ensure_default_teams(session=session)
    assert {t.name: t.languages for t in teams} == {
        "billing": ["en"],
        "care": ["en"],
        "swat": ["en"],
        "tech": ["en"],
    }


@pytest.mark.parametrize("language", ["en", "und", None])
def test_a_post_the_rules_team_reads_or_of_unknown_language_stays_with_the_rule(
    session: Session, language: str | None
) -> None:
    team, reason = choose_team(session=session, inp=_inp(language))
    assert (team.name, reason) == ("billing", "money to billing")


def test_a_language_no_team_reads_goes_to_the_fallback_team_saying_why(session: Session) -> None:
    team, reason = choose_team(session=session, inp=_inp("fa"))
    assert team.name == "care"
    assert reason == "language fa: no team reads it, sent to care"
    named, why = choose_team(session=session, inp=_inp("fa"), fallback="triage")
    assert (named.name, why) == ("triage", "language fa: no team reads it, sent to triage")


def test_a_team_that_lists_the_language_takes_it_before_one_that_reads_any(
    session: Session,
) -> None:
    ensure_default_teams(session=session)
    _team(session, "anything", [])
    _team(session, "tehran", ["fa", "en"])
    team, reason = choose_team(session=session, inp=_inp("fa"))
    assert team.name == "tehran"
    assert reason == "language fa: billing does not read it, sent to tehran"
    team, reason = choose_team(session=session, inp=_inp("ru"))
    assert (team.name, reason) == (
        "anything",
        "language ru: billing does not read it, sent to anything",
    )


def test_a_team_reading_any_language_keeps_every_post(session: Session) -> None:
    (billing,) = [t for t in ensure_default_teams(session=session) if t.name == "billing"]
    set_languages(session=session, team=billing, languages=[], actor="test")
    _team(session, "moscow", ["ru"])
    assert choose_team(session=session, inp=_inp("ru"))[0].name == "billing"
    event = session.scalars(select(Event).where(Event.kind == "team_languages")).one()
    assert event.data == {"team": "billing", "languages": []}


def test_an_active_agents_languages_are_their_teams_too(session: Session) -> None:
    (billing,) = [t for t in ensure_default_teams(session=session) if t.name == "billing"]
    reader = Agent(handle="olga", display_name="Olga", role="agent", languages=["ru"])
    reader.teams.append(billing)
    session.add(reader)
    session.flush()
    assert choose_team(session=session, inp=_inp("ru"))[0].name == "billing"
    reader.active = False
    session.flush()
    assert choose_team(session=session, inp=_inp("ru"))[0].name == "care"
