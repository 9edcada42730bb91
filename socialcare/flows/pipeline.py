"""Pipeline flows: score posts, route them into cases (polling: polling.py; history imports:
history.py)."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from socialcare.cases.ack import queued_acks
from socialcare.config import Settings, get_settings
from socialcare.db import get_engine, session_scope, utcnow
from socialcare.flows.base import Enqueue, chunks, later
from socialcare.flows.surge import observe_scored
from socialcare.routing.route import route_posts as route_posts_service
from socialcare.scoring.service import claim_waiting, run_scorer, store_scores
from socialcare.scoring.service import score_posts as score_posts_service
from socialcare.surge.incidents import link_routed

log = logging.getLogger(__name__)

ROUTE_BATCH = 256  # posts routed in one transaction
BATCH_ATTEMPTS = 3  # tries of a batch that lost a race, before routing its posts one by one
RACE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure


def score_posts(post_ids: list[int], *, enqueue: Enqueue, settings: Settings | None = None) -> int:
    """Score these posts and other waiting ones, up to SCORE_MAX_BATCH in one transaction (so a
    spike is scored at the model's batch speed), and hand them to routing.

    On SQLite every transaction holds the database's write lock (BEGIN IMMEDIATE), so the model
    runs between two short transactions there: read the waiting posts, score them outside any
    transaction, then store the scores with the compare-and-set. The web app and the other
    workers never wait behind a model batch; scorers wait for each other on a lock file beside
    the database (SQLite is one machine's), so none spends the model on a post another has."""
    from socialcare.scoring.scorer import get_scorer

    settings = settings or get_settings()
    scorer = get_scorer(settings)
    embeddings: dict[int, Any] = {}
    engine = get_engine(settings)
    if engine.dialect.name == "sqlite":
        with _scorers_in_turn(engine.url.database):
            with session_scope(settings) as session:
                posts = claim_waiting(
                    session=session, post_ids=post_ids, limit=settings.score_max_batch
                )
            results = run_scorer(posts, scorer, settings, embeddings=True)
            with session_scope(settings) as session:
                scored = store_scores(
                    session=session,
                    posts=posts,
                    results=results,
                    scorer=scorer,
                    settings=settings,
                    embeddings=embeddings,
                )
                _after_scoring(session, scored, embeddings, enqueue, settings)
        return len(scored)
    with session_scope(settings) as session:
        scored = score_posts_service(
            session=session,
            post_ids=post_ids,
            scorer=scorer,
            settings=settings,
            limit=settings.score_max_batch,
            embeddings=embeddings,
        )
        _after_scoring(session, scored, embeddings, enqueue, settings)
    return len(scored)


@contextmanager
def _scorers_in_turn(database: str | None) -> Iterator[None]:
    """An exclusive lock on a file beside the SQLite database, held from reading the waiting
    posts to storing their scores (an in-memory database has no file and needs none)."""
    if not database or database == ":memory:":
        yield
        return
    with Path(f"{database}.scoring-lock").open("a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _after_scoring(
    session: Session,
    scored: list[int],
    embeddings: dict[int, Any],
    enqueue: Enqueue,
    settings: Settings,
) -> None:
    """Hand the scored posts to routing, and to surge detection (the scoring pass's own
    embeddings; a surge opened here has its alerts enqueued after commit)."""
    for batch in chunks(scored, ROUTE_BATCH):
        later(session, enqueue, "route_posts", batch)
    observe_scored(
        session=session, post_ids=scored, enqueue=enqueue, settings=settings, embeddings=embeddings
    )


def route_posts(post_ids: list[int], *, enqueue: Enqueue, settings: Settings | None = None) -> int:
    """Route scored posts into cases and count brand replies, one transaction per batch of up
    to ROUTE_BATCH posts. A batch that deadlocks or meets a unique violation (a race the locks
    did not foresee) is tried again, then post by post, so no post is lost to another's error."""
    settings = settings or get_settings()
    touched = 0
    for batch in chunks(sorted(set(post_ids)), ROUTE_BATCH):
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            try:
                touched += _route_batch(batch, enqueue, settings)
                break
            except (IntegrityError, OperationalError) as exc:
                if not _is_race(exc):
                    raise
                log.warning(
                    "routing batch of %d posts lost a race (attempt %d): %s",
                    len(batch),
                    attempt,
                    type(exc.orig).__name__,
                )
        else:
            touched += _route_one_by_one(batch, enqueue, settings)
    return touched


def _route_batch(post_ids: list[int], enqueue: Enqueue, settings: Settings) -> int:
    with session_scope(settings) as session:
        cases = route_posts_service(session=session, post_ids=post_ids, settings=settings)
        if settings.ack_enabled and cases:
            for reply_id in queued_acks(session=session, case_ids=cases):
                later(session, enqueue, "send_reply", reply_id)
        # Posts join a surge when scored and get their case when routed: link those cases now,
        # and queue the lead's "same answer" where it was chosen.
        for reply_id in link_routed(session=session, case_ids=cases, now=utcnow()):
            later(session, enqueue, "send_reply", reply_id)
    return len(cases)


def _route_one_by_one(post_ids: list[int], enqueue: Enqueue, settings: Settings) -> int:
    """Each post in its own transaction; the first error is raised after the others are done."""
    touched, failed = 0, None
    for post_id in post_ids:
        try:
            touched += _route_batch([post_id], enqueue, settings)
        except (IntegrityError, OperationalError) as exc:
            log.warning("routing post %d failed: %s", post_id, type(exc.orig).__name__)
            failed = failed or exc
    if failed is not None:
        raise failed
    return touched


def _is_race(exc: DBAPIError) -> bool:
    """A unique violation, or PostgreSQL's deadlock or serialization failure: worth a retry."""
    if isinstance(exc, IntegrityError):
        return True
    return getattr(exc.orig, "sqlstate", None) in RACE_SQLSTATES
