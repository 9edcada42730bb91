"""Pipeline flows: poll an account, import files, score posts, route them into cases."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from socialcare.cases.ack import queued_acks
from socialcare.cases.service import raise_for_visibility
from socialcare.cases.service import route_posts as route_posts_service
from socialcare.config import Settings, get_settings
from socialcare.db import session_scope, utcnow
from socialcare.errors import RateLimited, SourceError
from socialcare.flows.base import Enqueue, chunks, later
from socialcare.posts.models import Account
from socialcare.posts.service import account_ref, ingest_posts, store_cursors
from socialcare.scoring.service import refresh_urgency
from socialcare.scoring.service import score_posts as score_posts_service
from socialcare.sources.registry import get_source

log = logging.getLogger(__name__)


def poll_account(account_id: int, *, enqueue: Enqueue, settings: Settings | None = None) -> int:
    """Fetch an account's new posts, store them and the cursors together; returns posts stored."""
    settings = settings or get_settings()
    with session_scope(settings) as session:
        account = session.get(Account, account_id)
        if account is None or not account.active or account.failing:
            return 0
        ref, old_cursors, source_name = account_ref(account), dict(account.cursors), account.source
    source = get_source(source_name, settings)
    now = utcnow()
    try:
        result = source.fetch(ref, old_cursors)
    except SourceError as exc:
        with session_scope(settings) as session:
            account = session.get(Account, account_id)
            assert account is not None
            account.last_error = str(exc)[:1000]
            account.poll_attempts += 1
            if exc.permanent:
                account.failing = True
                log.error("account %s failing: %s", account_id, exc)
            elif isinstance(exc, RateLimited) and exc.retry_after:
                account.next_poll_at = exc.retry_after
            else:
                backoff = min(900.0, settings.poll_interval_seconds * 2**account.poll_attempts)
                account.next_poll_at = now + timedelta(seconds=backoff)
        return 0
    with session_scope(settings) as session:
        query = select(Account).where(Account.id == account_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        account = session.execute(query).scalar_one()
        stored = ingest_posts(
            session=session,
            account=account,
            posts=result.posts,
            observed_at=result.observed_at,
            grace_seconds=settings.step_grace_seconds,
        )
        if stored.refreshed:
            risen = refresh_urgency(session=session, post_ids=stored.refreshed, settings=settings)
            raise_for_visibility(session=session, risen=risen, settings=settings)
        # Another poll may have advanced the cursors meanwhile: never move them back.
        if account.cursors == old_cursors:
            store_cursors(session=session, account=account, cursors=result.cursors)
        wait = result.next_poll_in or settings.poll_interval_seconds
        account.next_poll_at = utcnow() + timedelta(seconds=wait)
        for chunk in chunks(stored.to_score, settings.score_batch_size):
            later(session, enqueue, "score_posts", chunk)
        if stored.to_link:
            later(session, enqueue, "route_posts", stored.to_link)
    return len(stored.to_score) + len(stored.to_link)


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
