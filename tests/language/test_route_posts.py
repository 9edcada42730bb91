"""route_posts (routing.route) opens each customer post's case with a team that reads it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from socialcare.cases.models import Case, Event
from socialcare.config import Settings
from socialcare.people.models import Team
from socialcare.posts.models import STAGE_SCORED, Post
from socialcare.posts.service import ensure_account, ingest_posts
from socialcare.routing.route import route_posts
from socialcare.routing.service import ensure_default_teams
from socialcare.sources.base import IncomingPost

TEXTS = {
    "en": "@acme my parcel never came and nobody answers",
    "fa": "@acme سفارشم هنوز نرسیده و پشتیبانی هم جواب نمیده",
    "ru": "@acme Мой интернет не работает третий день",
    "und": "@acme 👍",
}


def test_each_case_goes_to_a_team_that_reads_its_first_post(
    session: Session, settings: Settings
) -> None:
    ensure_default_teams(session=session)
    session.add(Team(name="tehran", skills=[], sla_seconds={}, calendar={}, languages=["fa"]))
    at = datetime(2026, 12, 6, tzinfo=UTC)
    account = ensure_account(session, platform="x", handle="acme", source="x")
    posts = [
        IncomingPost(
            platform="x",
            external_id=code,
            author_external_id=f"c-{code}",
            author_handle=f"c{code}",
            text=text,
            created_at=at,
        )
        for code, text in TEXTS.items()
    ]
    result = ingest_posts(session=session, account=account, posts=posts, observed_at=at)
    session.execute(update(Post).values(stage=STAGE_SCORED))
    route_posts(session=session, post_ids=result.to_score, settings=settings)
    routed = session.execute(
        select(Post.language, Team.name)
        .join(Case, Case.root_post_id == Post.id)
        .join(Team, Team.id == Case.team_id)
    ).all()
    assert dict(routed) == {"en": "care", "fa": "tehran", "ru": "care", "und": "care"}
    reasons = {
        e.data["rule"] for e in session.scalars(select(Event).where(Event.kind == "case_opened"))
    }
    assert "language ru: no team reads it, sent to care" in reasons
    assert "language fa: care does not read it, sent to tehran" in reasons
