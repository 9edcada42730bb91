"""Pipeline flows: import files, score posts, route them into cases (polling: polling.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from socialcare.cases.ack import queued_acks
from socialcare.cases.service import route_posts as route_posts_service
from socialcare.config import Settings, get_settings
from socialcare.db import session_scope
from socialcare.flows.base import Enqueue, chunks, later
from socialcare.posts.models import Account
from socialcare.posts.service import account_ref, ingest_posts, store_cursors
from socialcare.scoring.service import score_posts as score_posts_service

log = logging.getLogger(__name__)


def score_posts(post_ids: list[int], *, enqueue: Enqueue, settings: Settings | None = None) -> int:
    """Score a batch of posts and hand them to routing."""
    from socialcare.scoring.complaint import get_complaint_model
    from socialcare.scoring.sentiment import get_sentiment_model

    settings = settings or get_settings()
    model = get_sentiment_model(settings)
    complaint_model = get_complaint_model(settings)
    with session_scope(settings) as session:
        scored = score_posts_service(
            session=session,
            post_ids=post_ids,
            model=model,
            complaint_model=complaint_model,
            settings=settings,
        )
        if scored:
            later(session, enqueue, "route_posts", scored)
    return len(scored)


def route_posts(post_ids: list[int], *, enqueue: Enqueue, settings: Settings | None = None) -> int:
    """Route scored posts into cases and count brand replies, each post in its own transaction
    (short row locks: concurrent workers routing one customer's posts do not deadlock)."""
    settings = settings or get_settings()
    touched = 0
    for post_id in sorted(post_ids):
        with session_scope(settings) as session:
            cases = route_posts_service(session=session, post_ids=[post_id], settings=settings)
            touched += len(cases)
            if settings.ack_enabled and cases:
                for reply_id in queued_acks(session=session, case_ids=cases):
                    later(session, enqueue, "send_reply", reply_id)
    return touched


def import_files(
    files: list[str], *, enqueue: Enqueue, settings: Settings | None = None
) -> dict[str, int]:
    """Load TWCS files through the replay source at once, as seen at their public times."""
    from socialcare.setup import ensure_replay_feed
    from socialcare.sources.replay import ReplaySource

    settings = settings or get_settings()
    source = ReplaySource()
    totals = {"new": 0, "duplicates": 0, "ignored": 0}
    with session_scope(settings) as session:
        feed = ensure_replay_feed(session=session, files=[Path(f) for f in files], speedup=1.0)
        feed.config = {**feed.config, "polled": False, "instant": True}
        feed.cursors = {}
        feed_id = feed.id
    while True:
        with session_scope(settings) as session:
            current = session.get(Account, feed_id)
            assert current is not None
            feed = current
            result = source.fetch(account_ref(feed), dict(feed.cursors))
            stored = ingest_posts(
                session=session,
                account=feed,
                posts=result.posts,
                observed_at=None,
                grace_seconds=settings.step_grace_seconds,
            )
            store_cursors(session=session, account=feed, cursors=result.cursors)
            totals["new"] += len(stored.to_score) + len(stored.to_link)
            totals["duplicates"] += stored.duplicates
            totals["ignored"] += stored.ignored
            for chunk in chunks(stored.to_score, settings.score_batch_size):
                later(session, enqueue, "score_posts", chunk)
            if stored.to_link:
                later(session, enqueue, "route_posts", stored.to_link)
        if result.exhausted or not result.posts:
            return totals
