"""Prometheus metrics read from the database at scrape time, so every worker process agrees."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from socialcare.cases.models import CLOSED_STATUSES, OPEN_STATUSES, Case, Reply
from socialcare.config import PRIORITIES
from socialcare.metrics.models import DELIVERY_STATES, DigestDelivery
from socialcare.people.models import Team
from socialcare.posts.models import STAGE_FAILED, STAGE_INGESTED, STAGE_SCORED, Account, Post

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
REPLY_STATES = ("queued", "sending", "sent", "failed", "unknown")
CASE_STATUSES = OPEN_STATUSES + CLOSED_STATUSES
NO_TEAM = "none"
Clock = Callable[[], datetime]

# name -> (help, labels); the order they are exposed in.
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "socialcare_queue_depth": (
        "Cases waiting in a team's queue (status queued).",
        ("team", "priority"),
    ),
    "socialcare_cases": ("Cases by status.", ("status",)),
    "socialcare_oldest_pending_step_seconds": (
        "Age of the oldest item waiting for a pipeline step (0 when none waits).",
        ("step",),
    ),
    "socialcare_replies": ("Outbox replies by state.", ("state",)),
    "socialcare_digest_deliveries": ("Scheduled digest deliveries by state.", ("state",)),
    "socialcare_poll_lag_seconds": (
        "Seconds since an active polled account was last polled (since it was added if never).",
        ("account",),
    ),
    "socialcare_failed_steps": (
        "Work given up: posts in stage failed, replies and digest deliveries in state failed,"
        " failing accounts.",
        ("kind",),
    ),
    "socialcare_accounts_failing": ("Active accounts whose polling is failing.", ()),
    "socialcare_metrics_database_up": ("1 if the last scrape could read the database.", ()),
}


def _family(name: str) -> GaugeMetricFamily:
    doc, labels = FAMILIES[name]
    return GaugeMetricFamily(name, doc, labels=list(labels) if labels else None)


def _count_by(session: Session, column: Any, *where: ColumnElement[bool]) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).where(*where).group_by(column)).all()
    return {str(key): int(n) for key, n in rows}


def _count(session: Session, *where: ColumnElement[bool]) -> int:
    return int(session.scalar(select(func.count()).where(*where)) or 0)


def _zero_filled(known: Iterable[str], counts: dict[str, int]) -> dict[str, int]:
    out = dict.fromkeys(known, 0)
    out.update(counts)
    return out


def _age(now: datetime, oldest: datetime | None) -> float:
    return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())


def _queue_depth(session: Session) -> GaugeMetricFamily:
    family = _family("socialcare_queue_depth")
    rows = session.execute(
        select(Team.name, Case.priority, func.count())
        .select_from(Case)
        .outerjoin(Team, Case.team_id == Team.id)
        .where(Case.status == "queued")
        .group_by(Team.name, Case.priority)
    ).all()
    depth = {
        (team, priority): 0
        for team in session.scalars(select(Team.name))
        for priority in PRIORITIES
    }
    for team, priority, n in rows:
        depth[(team or NO_TEAM, priority)] = int(n)
    for (team, priority), n in sorted(depth.items()):
        family.add_metric([team, priority], n)
    return family


def _oldest_pending(session: Session, now: datetime) -> GaugeMetricFamily:
    family = _family("socialcare_oldest_pending_step_seconds")
    # As the sweep sees it: customer posts wait to be scored; scored posts and brand posts
    # (which skip scoring) wait to be routed; queued replies wait to be sent.
    to_score = and_(Post.stage == STAGE_INGESTED, Post.is_brand.is_(False))
    to_route = or_(
        Post.stage == STAGE_SCORED, and_(Post.stage == STAGE_INGESTED, Post.is_brand.is_(True))
    )
    oldest = {
        "score": session.scalar(select(func.min(Post.ingested_at)).where(to_score)),
        "route": session.scalar(select(func.min(Post.ingested_at)).where(to_route)),
        "send": session.scalar(select(func.min(Reply.created_at)).where(Reply.state == "queued")),
    }
    for step, at in oldest.items():
        family.add_metric([step], _age(now, at))
    return family


def _poll_lag(session: Session, now: datetime) -> GaugeMetricFamily:
    family = _family("socialcare_poll_lag_seconds")
    accounts = session.scalars(
        select(Account).where(Account.active.is_(True)).order_by(Account.platform, Account.handle)
    )
    for account in accounts:
        if (account.config or {}).get("polled"):
            since = account.last_polled_at or account.created_at
            family.add_metric([f"{account.platform}:{account.handle}"], _age(now, since))
    return family


def _families(session: Session, now: datetime) -> Iterator[Metric]:
    yield _queue_depth(session)
    cases = _family("socialcare_cases")
    for status, n in _zero_filled(CASE_STATUSES, _count_by(session, Case.status)).items():
        cases.add_metric([status], n)
    yield cases
    yield _oldest_pending(session, now)
    replies = _family("socialcare_replies")
    for state, n in _zero_filled(REPLY_STATES, _count_by(session, Reply.state)).items():
        replies.add_metric([state], n)
    yield replies
    digests = _family("socialcare_digest_deliveries")
    by_state = _count_by(session, DigestDelivery.state)
    for state, n in _zero_filled(DELIVERY_STATES, by_state).items():
        digests.add_metric([state], n)
    yield digests
    yield _poll_lag(session, now)
    failing_accounts = _count(session, Account.failing.is_(True), Account.active.is_(True))
    failed = {
        "post": _count(session, Post.stage == STAGE_FAILED),
        "reply": _count(session, Reply.state == "failed"),
        "digest": by_state.get("failed", 0),
        "account": failing_accounts,
    }
    steps = _family("socialcare_failed_steps")
    for kind, count in failed.items():
        steps.add_metric([kind], count)
    yield steps
    accounts = _family("socialcare_accounts_failing")
    accounts.add_metric([], failing_accounts)
    yield accounts


class DatabaseCollector(Collector):
    """Computes every socialcare gauge from the database on each scrape."""

    def __init__(self, make_session: sessionmaker[Session], clock: Clock) -> None:
        self._make_session = make_session
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        """The families this collector exposes, without samples."""
        return [_family(name) for name in FAMILIES]

    def collect(self) -> Iterable[Metric]:
        """Query the database; on failure expose only socialcare_metrics_database_up 0."""
        try:
            with self._make_session() as session:
                families = list(_families(session, self._clock()))
        except SQLAlchemyError as exc:
            log.warning("metrics: cannot read the database: %s", type(exc).__name__)
            families = []
        up = _family("socialcare_metrics_database_up")
        up.add_metric([], 1 if families else 0)
        return [*families, up]


def build_registry(make_session: sessionmaker[Session], clock: Clock) -> CollectorRegistry:
    """A registry of its own (not the process-global default) holding the database collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(make_session, clock))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text exposition format."""
    return generate_latest(registry)
