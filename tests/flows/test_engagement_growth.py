"""A post seen again by a later poll: its audience and engagement growth raise its case."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from socialcare.cases.models import Case, Event
from socialcare.db import session_scope, utcnow
from socialcare.flows import InlineRunner, polling
from socialcare.posts.models import Account, Post, Score
from socialcare.scoring.urgency import priority_for
from socialcare.sources.base import FetchResult, IncomingPost


class SeenTwice:
    """A source that delivers one complaint on each poll, with the counts of that moment."""

    platform = "x"

    def __init__(self, sightings):
        self.sightings = list(sightings)

    def fetch(self, account, cursors):
        observed_at, followers, verified, metrics = self.sightings.pop(0)
        post = IncomingPost(
            platform="x",
            external_id="9001",
            author_external_id="42",
            author_handle="angry_customer",
            text="charged twice and still waiting for my refund",
            created_at=PUBLIC_AT,
            author_followers=followers,
            author_verified=verified,
            metrics=metrics,
        )
        return FetchResult(
            posts=[post], cursors={"n": len(self.sightings)}, observed_at=observed_at
        )


PUBLIC_AT = utcnow().replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def account_id(engine, settings):
    with session_scope(settings) as s:
        account = Account(platform="x", handle="acmecare", source="x", config={}, cursors={})
        s.add(account)
        s.flush()
        return account.id


def _poll(settings, monkeypatch, source, account_id):
    monkeypatch.setattr(polling, "get_source", lambda name, settings: source)
    runner = InlineRunner(settings)
    polling.poll_account(account_id, enqueue=runner, settings=settings)
    runner.drain()


def test_a_complaint_that_goes_viral_between_polls_rises_in_the_queue(
    settings, model, account_id, monkeypatch
):
    quiet = {"like_count": 0, "retweet_count": 0, "reply_count": 0, "quote_count": 0}
    viral = {"like_count": 900, "retweet_count": 400, "reply_count": 150, "quote_count": 50}
    source = SeenTwice(
        [
            (PUBLIC_AT + timedelta(minutes=2), 150, False, quiet),
            (PUBLIC_AT + timedelta(minutes=32), 80_000, True, viral),
        ]
    )
    _poll(settings, monkeypatch, source, account_id)
    with session_scope(settings) as s:
        case = s.execute(select(Case)).scalar_one()
        before = (case.priority, s.execute(select(Score)).scalar_one().urgency)
        post = s.execute(select(Post)).scalar_one()
        assert post.engagement_per_hour == 0.0

    _poll(settings, monkeypatch, source, account_id)
    with session_scope(settings) as s:
        post = s.execute(select(Post)).scalar_one()
        score = s.execute(select(Score)).scalar_one()
        case = s.execute(select(Case)).scalar_one()
        # 900 + 2*400 + 150 + 50 = 1,900 interactions gained in the 30 minutes between sightings.
        assert post.engagement_per_hour == pytest.approx(3800.0)
        assert (post.author_followers, post.author_verified) == (80_000, True)
        reasons = {r["signal"]: r for r in score.reasons}
        assert reasons["engagement_growth"]["detail"] == "+3800 interactions/h"
        assert reasons["engagement_growth"]["value"] == 1.0
        assert reasons["reach"]["detail"] == "80000 followers, verified"
        # The text signals keep the values the models gave at the first scoring.
        assert score.urgency > before[1]
        assert score.priority == priority_for(score.urgency, settings.urgency_thresholds)
        order = ["P1", "P2", "P3", "P4"]
        assert order.index(case.priority) < order.index(before[0])
        assert case.priority == score.priority
        raised = s.execute(select(Event).where(Event.kind == "priority_raised")).scalars().all()
        assert [(e.data["previous"], e.data["priority"]) for e in raised] == [
            (before[0], case.priority)
        ]


def test_a_post_seen_again_with_the_same_counts_changes_nothing(
    settings, model, account_id, monkeypatch
):
    counts = {"like_count": 3, "retweet_count": 0, "reply_count": 1, "quote_count": 0}
    source = SeenTwice(
        [
            (PUBLIC_AT + timedelta(minutes=30), 150, False, counts),
            (PUBLIC_AT + timedelta(minutes=60), 150, False, dict(counts)),
        ]
    )
    _poll(settings, monkeypatch, source, account_id)
    with session_scope(settings) as s:
        first = s.execute(select(Score.urgency, Score.reasons)).one()
        # 4 interactions over the half hour since the post went public.
        assert s.execute(select(Post.engagement_per_hour)).scalar_one() == pytest.approx(8.0)
    _poll(settings, monkeypatch, source, account_id)
    with session_scope(settings) as s:
        assert s.execute(select(Score.urgency, Score.reasons)).one() == first
        assert s.execute(select(Event).where(Event.kind == "priority_raised")).first() is None
