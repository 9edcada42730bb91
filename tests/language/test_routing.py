"""choose_team: the rules pick a team, then the post's language decides whether it can keep it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.cases.models import Event
from socialcare.people.models import Agent, Team
from socialcare.posts.models import Post
from socialcare.posts.service import ensure_account, ingest_posts
from socialcare.routing.rules import RouteInput
from socialcare.routing.service import choose_team, ensure_default_teams, set_languages
from socialcare.sources.base import IncomingPost


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


def test_the_default_teams_read_english_and_keep_english_and_unknown_posts(
    session: Session,
) -> None:
    teams = ensure_default_teams(session=session)
    assert {t.name: t.languages for t in teams} == {
        "billing": ["en"],
        "care": ["en"],
        "swat": ["en"],
        "tech": ["en"],
    }
    for language in ("en", "und", None):
        team, reason = choose_team(session=session, inp=_inp(language))
        assert (team.name, reason) == ("billing", "money to billing")


def test_a_post_goes_to_a_team_listing_its_language_then_one_reading_any_then_the_fallback(
    session: Session,
) -> None:
    team, reason = choose_team(session=session, inp=_inp("fa"))
    assert (team.name, reason) == ("care", "language fa: no team reads it, sent to care")
    batch = {t.name: t for t in session.scalars(select(Team))}  # a routing batch's teams
    named, why = choose_team(session=session, inp=_inp("fa"), fallback="triage", teams=batch)
    assert (named.name, why) == ("triage", "language fa: no team reads it, sent to triage")
    assert batch["triage"] is named  # created, and handed to the batch

    _team(session, "anything", [])
    _team(session, "tehran", ["fa", "en"])
    team, reason = choose_team(session=session, inp=_inp("fa"))
    assert (team.name, reason) == (
        "tehran",
        "language fa: billing does not read it, sent to tehran",
    )
    team, reason = choose_team(session=session, inp=_inp("ru"))
    assert (team.name, reason) == (
        "anything",
        "language ru: billing does not read it, sent to anything",
    )
    # A batch looks only at its own teams (not tehran, made since); triage, which routing made
    # for it, lists no language: it reads any.
    team, reason = choose_team(session=session, inp=_inp("fa"), teams=batch)
    assert (team.name, reason) == (
        "triage",
        "language fa: billing does not read it, sent to triage",
    )


def test_agents_languages_count_while_active_and_a_team_reading_any_keeps_every_post(
    session: Session,
) -> None:
    (billing,) = [t for t in ensure_default_teams(session=session) if t.name == "billing"]
    reader = Agent(handle="olga", display_name="Olga", role="agent", languages=["ru"])
    reader.teams.append(billing)
    session.add(reader)
    session.flush()
    assert choose_team(session=session, inp=_inp("ru"))[0].name == "billing"
    reader.active = False
    session.flush()
    assert choose_team(session=session, inp=_inp("ru"))[0].name == "care"

    set_languages(session=session, team=billing, languages=[], actor="test")
    assert choose_team(session=session, inp=_inp("ru"))[0].name == "billing"
    event = session.scalars(select(Event).where(Event.kind == "team_languages")).one()
    assert event.data == {"team": "billing", "languages": []}


def test_mixed_posts_ingested_together_each_reach_a_team_that_reads_them(
    session: Session,
) -> None:
    ensure_default_teams(session=session)
    _team(session, "tehran", ["fa"])
    _team(session, "moscow", ["ru"])
    texts = [
        "@acme my parcel never came and nobody answers",
        "@acme سفارشم هنوز نرسیده و پشتیبانی هم جواب نمیده",
        "@acme Мой интернет не работает третий день",
        "@acme 👍",
    ]
    at = datetime(2026, 12, 6, tzinfo=UTC)
    posts = [
        IncomingPost(
            platform="x",
            external_id=str(n),
            author_external_id=f"c{n}",
            author_handle=f"c{n}",
            text=text,
            created_at=at,
        )
        for n, text in enumerate(texts)
    ]
    account = ensure_account(session, platform="x", handle="acme", source="x")
    ingest_posts(session=session, account=account, posts=posts, observed_at=at)
    stored = session.scalars(select(Post).order_by(Post.external_id)).all()
    chosen = [choose_team(session=session, inp=_inp(p.language))[0].name for p in stored]
    assert chosen == ["billing", "tehran", "moscow", "billing"]
