"""A replay on today's clock through the real poll, scoring and routing, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from socialcare.cases.models import Case
from socialcare.config import get_settings
from socialcare.db import session_scope
from socialcare.flows import InlineRunner
from socialcare.flows.polling import poll
from socialcare.posts.models import Account, Post
from socialcare.setup import ensure_replay_feed
from socialcare.sources import twcs
from tests.flows.test_import import HEAD, _csv_rows, _when, expected_first_responses


def _replay_all(settings, feed_id: int) -> None:
    """Poll the feed until its file is exhausted, running every step it leads to."""
    runner = InlineRunner(settings)
    total = len(twcs.load_posts([HEAD]))
    for _ in range(200):
        poll(feed_id, enqueue=runner, settings=settings)
        runner.drain()
        with session_scope(settings) as s:
            feed = s.get(Account, feed_id)
            assert feed is not None
            if feed.cursors.get("position") == total:
                return
    raise AssertionError("the replay did not reach the end of the file")


def test_a_replay_on_todays_clock_keeps_every_first_response_time(engine, settings, model, session):
    before = datetime.now(UTC).replace(microsecond=0)
    with session_scope(settings) as s:
        feed_id = ensure_replay_feed(session=s, files=[HEAD], speedup=1e7, clock="now").id
    _replay_all(settings, feed_id)
    rows = _csv_rows()
    first = min(_when(r) for r in rows.values())
    posts = session.execute(select(Post.external_id, Post.created_at)).all()
    assert len(posts) == len(rows)
    shifts = {created - _when(rows[external_id]) for external_id, created in posts}
    (shift,) = shifts  # every post, the brand's replies included, moved by the same amount
    assert before <= first + shift <= datetime.now(UTC)  # the first post is dated the start
    expected = expected_first_responses(session)  # from the CSV's original timestamps
    cases = session.execute(select(Case)).scalars().all()
    assert len(cases) > 200
    for case in cases:
        root = session.get(Post, case.root_post_id)
        assert case.opened_at == _when(rows[root.external_id]) + shift
        got = case.first_response_at
        seconds = (got - case.opened_at).total_seconds() if got else None
        assert seconds == expected[case.id], f"case {case.id}"
    assert sum(v is not None for v in expected.values()) > 150
    # SLA deadlines count from the replay's start, not from the file's years.
    due = [c.sla_due_at for c in cases if c.sla_due_at is not None]
    assert len(due) == len(cases) and min(due) >= before


@pytest.mark.parametrize(("env", "expected"), [(None, "now"), ("original", "original")])
def test_a_replay_feed_takes_its_clock_from_replay_clock(
    engine, settings, session, monkeypatch, env, expected
):
    if env is not None:
        monkeypatch.setenv("REPLAY_CLOCK", env)
    else:
        monkeypatch.delenv("REPLAY_CLOCK", raising=False)
    get_settings.cache_clear()
    feed = ensure_replay_feed(session=session, files=[HEAD], speedup=60)
    assert feed.config["replay_clock"] == expected
    assert feed.config["speedup"] == 60
    with pytest.raises(ValueError, match="one of now, original, not 'later'"):
        ensure_replay_feed(session=session, files=[HEAD], speedup=60, clock="later")
