"""Observe scored posts: cluster them per account and open a surge when a cluster arrives well
above the account's usual rate for that hour.

Any worker process may observe any batch: each account's state (baseline and live clusters) is
in the database, and a worker first locks the account's surge_accounts row (SELECT ... FOR
UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers), accounts in id
order so two batches cannot deadlock, then reads, updates and writes it in the same
transaction. The version column counts the updates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.db import insert_for
from socialcare.posts.models import Post
from socialcare.surge import detector as d
from socialcare.surge.baseline import Baseline, epoch_hour
from socialcare.surge.clusters import AccountClusters
from socialcare.surge.incidents import (
    ACTIVE,
    Candidate,
    SurgePostRef,
    add_posts,
    link_cases,
    open_surge,
)
from socialcare.surge.models import Surge, SurgeAccount, SurgeCluster

# The cold-start rule. With no history at all nothing is judged (every burst would look like a
# surge). From COLD_START_HOURS of the account's own history (its backfill, or the hours it has
# been watched) until MIN_HISTORY_HOURS, a cluster is judged against the busiest whole hour seen
# before its window instead of its hour of the week: a rate the account has itself reached, so
# a quiet first night does not make the morning look like a surge, and the hours the window
# overlaps are left out, so a burst's own first posts do not raise its bar. bench/surge.py
# --cold measures it (each week replayed with no history before it).
COLD_START_HOURS = 6
MIN_HISTORY_HOURS = 24  # hours of baseline before each hour of the week is judged on its own


@dataclass(frozen=True)
class ObservedPost:
    """A scored customer post: its id, account, public time, unit embedding and topic."""

    post_id: int
    account_id: int
    created_at: datetime
    embedding: Any  # 384 floats: tuple, list, numpy array or torch tensor
    topic: str
    case_id: int | None = None


@dataclass(frozen=True)
class SurgeUpdate:
    """What an observe did to a surge: 'opened' (alert_ids to send after commit) or 'grew'."""

    kind: str
    surge_id: int
    account_id: int
    alert_ids: tuple[int, ...] = ()


def _lock(session: Session, account_id: int, now: datetime) -> SurgeAccount:
    session.execute(
        insert_for(session)(SurgeAccount)
        .values(account_id=account_id, baseline={}, version=0, updated_at=now)
        .on_conflict_do_nothing(index_elements=["account_id"])
    )
    return session.execute(
        select(SurgeAccount)
        .where(SurgeAccount.account_id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def _history(session: Session, account_id: int, first: datetime, config: d.SurgeConfig) -> Baseline:
    times = session.execute(
        select(Post.created_at).where(
            Post.account_id == account_id,
            Post.is_brand.is_(False),
            Post.created_at >= first - config.history,
            Post.created_at < first,
        )
    ).scalars()
    return Baseline.from_history(times, until=first)


def observe(
    *,
    session: Session,
    posts: Sequence[ObservedPost | tuple[Any, ...]],
    settings: Settings,
    now: datetime,
    config: d.SurgeConfig = d.DEFAULT_CONFIG,
) -> list[SurgeUpdate]:
    """Cluster the posts into their accounts' live clusters, grow open surges, open new ones."""
    items = [p if isinstance(p, ObservedPost) else ObservedPost(*p) for p in posts]
    by_account: dict[int, list[ObservedPost]] = {}
    for item in items:
        by_account.setdefault(int(item.account_id), []).append(item)
    updates: list[SurgeUpdate] = []
    for account_id in sorted(by_account):
        updates += _observe_account(
            session, account_id, by_account[account_id], settings=settings, now=now, config=config
        )
    return updates


def _observe_account(
    session: Session,
    account_id: int,
    posts: list[ObservedPost],
    *,
    settings: Settings,
    now: datetime,
    config: d.SurgeConfig,
) -> list[SurgeUpdate]:
    posts = sorted(posts, key=lambda p: (p.created_at, p.post_id))
    state = _lock(session, account_id, now)
    baseline = Baseline.from_json(state.baseline)
    if baseline.hour is None:
        baseline = _history(session, account_id, posts[0].created_at, config)
    active = {
        s.id: s
        for s in session.execute(
            select(Surge).where(Surge.account_id == account_id, Surge.status.in_(ACTIVE))
        ).scalars()
    }
    rows = session.execute(
        select(Post.id, Post.text, Post.author_external_id).where(
            Post.id.in_([p.post_id for p in posts])
        )
    ).all()
    info = {int(r[0]): (r[1], r[2]) for r in rows}
    live = AccountClusters(session, account_id, active=set(active), config=config)
    joined_surge: dict[int, list[SurgePostRef]] = {}
    for post in posts:
        text, author = info.get(post.post_id, ("", None))
        placed = live.place(post, text=text, author=author)
        if placed is None:
            continue
        cluster, sim = placed
        if cluster.surge_id in active:
            ref = SurgePostRef(post.post_id, post.created_at, sim)
            joined_surge.setdefault(cluster.surge_id, []).append(ref)
        else:
            baseline.add(post.created_at)
    updates = _judge(
        session, live, baseline, active, joined_surge, settings=settings, now=now, config=config
    )
    live.trim(latest=posts[-1].created_at)
    link_cases(session=session, surge_ids=sorted(active), now=now)
    state.baseline = baseline.to_json()
    state.version += 1
    state.updated_at = now
    session.flush()
    return updates


def _judge(
    session: Session,
    live: AccountClusters,
    baseline: Baseline,
    active: dict[int, Surge],
    joined_surge: dict[int, list[SurgePostRef]],
    *,
    settings: Settings,
    now: datetime,
    config: d.SurgeConfig,
) -> list[SurgeUpdate]:
    updates: list[SurgeUpdate] = []
    hours = sum(baseline.seen)
    for cluster in live.touched():
        if cluster.surge_id in active or hours < COLD_START_HOURS:
            continue
        end = cluster.last_at
        authors, window = live.window(cluster, end=end)
        if hours >= MIN_HISTORY_HOURS:
            usual = baseline.expected(end)
        else:
            usual = baseline.peak(before=epoch_hour(end - config.window))
        verdict = d.surge_test(authors, usual, config)
        if not verdict.surge:
            continue
        refs = [SurgePostRef(pid, at, sim) for at, pid, sim in window]
        target = _nearby_surge(live, cluster, active, config)
        if target is not None:
            cluster.surge_id = target
            joined_surge.setdefault(target, []).extend(refs)
            continue
        candidate = Candidate(
            key=f"{cluster.account_id}:{cluster.id}:{cluster.generation}",
            account_id=cluster.account_id,
            title=d.title_for(d.main_topic(cluster.topics), d.top_keywords(cluster.keywords)),
            topic=d.main_topic(cluster.topics),
            keywords=d.top_keywords(cluster.keywords, 8),
            started_at=min(at for at, _, _ in window),
            count=authors,
            rate_per_hour=len(window) / config.window_hours,
            expected_per_hour=verdict.expected / config.window_hours,
            p_value=verdict.p_value,
            posts=refs,
        )
        surge, opened, alert_ids = open_surge(
            session=session, candidate=candidate, settings=settings, now=now
        )
        cluster.surge_id = surge.id
        cluster.generation += 1
        active[surge.id] = surge
        live.pin(surge.id)
        if opened:
            updates.append(SurgeUpdate("opened", surge.id, cluster.account_id, tuple(alert_ids)))
    for surge_id, refs in sorted(joined_surge.items()):
        if not refs:
            continue
        rate = live.surge_rate(surge_id)
        add_posts(session=session, surge_id=surge_id, posts=refs, now=now, rate_per_hour=rate)
        if not any(u.surge_id == surge_id for u in updates):
            updates.append(SurgeUpdate("grew", surge_id, active[surge_id].account_id))
    return updates


def _nearby_surge(
    live: AccountClusters, cluster: SurgeCluster, active: dict[int, Surge], config: d.SurgeConfig
) -> int | None:
    """An open surge whose cluster says nearly the same thing (one burst, one incident)."""
    best, best_sim = None, config.merge_threshold
    mine = live.centroid(cluster)
    for other in live.clusters:
        if other is cluster or other.surge_id not in active:
            continue
        if other.last_at < cluster.last_at - config.window:
            continue  # that surge has gone quiet: this is a new one
        theirs = live.centroid(other)
        sim = float(np.dot(mine, theirs) / (np.linalg.norm(mine) * np.linalg.norm(theirs)))
        if sim >= best_sim:
            best, best_sim = other.surge_id, sim
    return best
