"""Flows: each step of the pipeline as one unit of work, enqueuing the next step after commit.

Tasks (workers/tasks.py) and the inline runner (imports, tests) call these. A flow opens its own
sessions; services never do. `enqueue(step, *args)` hands a follow-up step to whoever runs them.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from socialcare.cases import outbox
from socialcare.cases.models import Reply
from socialcare.cases.service import route_posts as route_posts_service
from socialcare.cases.work import age_overdue, release_expired_claims
from socialcare.config import Settings, get_settings
from socialcare.db import after_commit, session_scope, utcnow
from socialcare.errors import RateLimited, SourceError
from socialcare.posts.models import (
    STAGE_FAILED,
    STAGE_INGESTED,
    STAGE_SCORED,
    Account,
    Post,
)
from socialcare.posts.service import account_ref, ingest_posts, store_cursors
from socialcare.scoring.service import score_posts as score_posts_service
from socialcare.sources.base import AccountRef
from socialcare.sources.registry import get_source

log = logging.getLogger(__name__)


class Enqueue(Protocol):
    def __call__(self, step: str, *args: Any) -> None: ...


def _later(session: Session, enqueue: Enqueue, step: str, *args: Any) -> None:
    after_commit(session, lambda: enqueue(step, *args))


def _chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


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
        # Another poll may have advanced the cursors meanwhile: never move them back.
        if account.cursors == old_cursors:
            store_cursors(session=session, account=account, cursors=result.cursors)
        wait = result.next_poll_in or settings.poll_interval_seconds
        account.next_poll_at = utcnow() + timedelta(seconds=wait)
        for chunk in _chunks(stored.to_score, settings.score_batch_size):
            _later(session, enqueue, "score_posts", chunk)
        if stored.to_link:
            _later(session, enqueue, "route_posts", stored.to_link)
    return len(stored.to_score) + len(stored.to_link)


def score_posts(post_ids: list[int], *, enqueue: Enqueue, settings: Settings | None = None) -> int:
    """Score a batch of posts and hand them to routing."""
    from socialcare.scoring.sentiment import get_sentiment_model

    settings = settings or get_settings()
    model = get_sentiment_model(settings)
    with session_scope(settings) as session:
        scored = score_posts_service(
            session=session, post_ids=post_ids, model=model, settings=settings
        )
        if scored:
            _later(session, enqueue, "route_posts", scored)
    return len(scored)


def route_posts(post_ids: list[int], *, enqueue: Enqueue, settings: Settings | None = None) -> int:
    """Route scored posts into cases and count brand replies."""
    settings = settings or get_settings()
    with session_scope(settings) as session:
        return len(route_posts_service(session=session, post_ids=post_ids, settings=settings))


def _reply_account(session: Session, account: Account, settings: Settings) -> AccountRef:
    ref = account_ref(account)
    feed_id = (account.config or {}).get("feed")
    if account.source == "replay" and feed_id:
        from socialcare.sources.replay import with_clock

        feed = session.get(Account, feed_id)
        if feed is not None:
            speedup = float(feed.config.get("speedup", settings.replay_speedup))
            ref = with_clock(ref, dict(feed.cursors), speedup)
    return ref


def send_reply(reply_id: int, *, enqueue: Enqueue, settings: Settings | None = None) -> str:
    """Publish a queued reply at most once; returns the reply's state afterwards."""
    settings = settings or get_settings()
    with session_scope(settings) as session:
        if not outbox.begin_send(session=session, reply_id=reply_id):
            reply = session.get(Reply, reply_id)
            return reply.state if reply else "missing"
    with session_scope(settings) as session:
        reply, _, account, target = outbox.reply_target(session=session, reply_id=reply_id)
        ref, text, source_name = (
            _reply_account(session, account, settings),
            reply.text,
            account.source,
        )
        in_reply_to = target.external_id
    source = get_source(source_name, settings)
    try:
        sent = source.send_reply(ref, in_reply_to=in_reply_to, text=text)
    except SourceError as exc:
        with session_scope(settings) as session:
            state = outbox.record_failure(
                session=session,
                reply_id=reply_id,
                error=exc,
                max_attempts=settings.max_attempts,
                now=utcnow(),
            )
            if state == "unknown":
                _later(session, enqueue, "reconcile_reply", reply_id)
        return state
    with session_scope(settings) as session:
        outbox.record_sent(session=session, reply_id=reply_id, sent=sent)
    return "sent"


def reconcile_reply(reply_id: int, *, enqueue: Enqueue, settings: Settings | None = None) -> str:
    """Settle a reply whose send outcome was unknown by reading the platform."""
    settings = settings or get_settings()
    with session_scope(settings) as session:
        reply, _, account, target = outbox.reply_target(session=session, reply_id=reply_id)
        if reply.state != "unknown":
            return reply.state
        ref, text, source_name = (
            _reply_account(session, account, settings),
            reply.text,
            account.source,
        )
        in_reply_to = target.external_id
    try:
        found = get_source(source_name, settings).find_reply(
            ref, in_reply_to=in_reply_to, text=text
        )
    except SourceError as exc:
        log.warning("reconcile of reply %s postponed: %s", reply_id, exc)
        return "unknown"
    with session_scope(settings) as session:
        if found is not None:
            outbox.record_sent(session=session, reply_id=reply_id, sent=found)
            return "sent"
        outbox.mark_not_published(session=session, reply_id=reply_id)
        return "failed"


def _overdue_posts(session: Session, settings: Settings, enqueue: Enqueue) -> int:
    now = utcnow()
    due = list(
        session.execute(
            select(Post.id, Post.stage, Post.is_brand, Post.attempts)
            .where(Post.stage.in_((STAGE_INGESTED, STAGE_SCORED)), Post.next_step_at < now)
            .order_by(Post.next_step_at)
            .limit(5000)
        )
    )
    to_score: list[int] = []
    to_route: list[int] = []
    for post_id, stage, is_brand, attempts in due:
        if attempts >= settings.max_attempts:
            session.execute(
                update(Post)
                .where(Post.id == post_id)
                .values(stage=STAGE_FAILED, last_error=f"gave up after {attempts} attempts")
            )
            continue
        (to_score if stage == STAGE_INGESTED and not is_brand else to_route).append(post_id)
    ids = [row[0] for row in due]
    if ids:
        session.execute(
            update(Post)
            .where(Post.id.in_(ids), Post.stage.in_((STAGE_INGESTED, STAGE_SCORED)))
            .values(
                attempts=Post.attempts + 1,
                next_step_at=now + timedelta(seconds=settings.step_grace_seconds),
            )
        )
    for chunk in _chunks(to_score, settings.score_batch_size):
        _later(session, enqueue, "score_posts", chunk)
    for chunk in _chunks(to_route, 200):
        _later(session, enqueue, "route_posts", chunk)
    return len(to_score) + len(to_route)


def _overdue_replies(session: Session, settings: Settings, enqueue: Enqueue) -> int:
    now = utcnow()
    stale = now - timedelta(seconds=settings.step_grace_seconds)
    count = 0
    for reply in session.execute(
        select(Reply).where(Reply.state.in_(("queued", "sending", "unknown")))
    ).scalars():
        due_at = reply.next_attempt_at or reply.created_at
        if reply.state == "queued" and due_at <= now:
            _later(session, enqueue, "send_reply", reply.id)
        elif reply.state == "sending" and due_at < stale:
            # Its worker died mid-send: the outcome is unknown, so look before anything else.
            reply.state = "unknown"
            _later(session, enqueue, "reconcile_reply", reply.id)
        elif reply.state == "unknown" and due_at < stale:
            reply.next_attempt_at = now
            _later(session, enqueue, "reconcile_reply", reply.id)
        else:
            continue
        count += 1
    return count


def sweep(*, enqueue: Enqueue, settings: Settings | None = None) -> dict[str, int]:
    """Re-enqueue every overdue step, return expired claims, age cases past their SLA."""
    settings = settings or get_settings()
    now = utcnow()
    with session_scope(settings) as session:
        return {
            "posts": _overdue_posts(session, settings, enqueue),
            "replies": _overdue_replies(session, settings, enqueue),
            "claims_released": release_expired_claims(session=session, now=now),
            "aged": age_overdue(session=session, now=now),
        }


def poll_due(*, enqueue: Enqueue, settings: Settings | None = None) -> int:
    """Enqueue a poll for every polled account whose time has come (leasing it meanwhile)."""
    settings = settings or get_settings()
    now = utcnow()
    with session_scope(settings) as session:
        accounts = session.execute(
            select(Account).where(
                Account.active.is_(True),
                Account.failing.is_(False),
                (Account.next_poll_at.is_(None)) | (Account.next_poll_at <= now),
            )
        ).scalars()
        count = 0
        for account in accounts:
            if not (account.config or {}).get("polled"):
                continue
            account.next_poll_at = now + timedelta(seconds=settings.step_grace_seconds)
            _later(session, enqueue, "poll_account", account.id)
            count += 1
    return count


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
            for chunk in _chunks(stored.to_score, settings.score_batch_size):
                _later(session, enqueue, "score_posts", chunk)
            if stored.to_link:
                _later(session, enqueue, "route_posts", stored.to_link)
        if result.exhausted or not result.posts:
            return totals


STEPS: dict[str, Callable[..., Any]] = {
    "poll_account": poll_account,
    "score_posts": score_posts,
    "route_posts": route_posts,
    "send_reply": send_reply,
    "reconcile_reply": reconcile_reply,
}


class InlineRunner:
    """Runs follow-up steps in this process, one after another (imports, tests, no broker)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self.pending: deque[tuple[str, tuple[Any, ...]]] = deque()

    def __call__(self, step: str, *args: Any) -> None:
        self.pending.append((step, args))

    def drain(self) -> int:
        ran = 0
        while self.pending:
            step, args = self.pending.popleft()
            STEPS[step](*args, enqueue=self, settings=self.settings)
            ran += 1
        return ran
