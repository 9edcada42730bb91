"""One account's live clusters, loaded from and written back to surge_clusters (bounded)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.surge import detector as d
from socialcare.surge.models import SurgeCluster

if TYPE_CHECKING:
    from socialcare.surge.service import ObservedPost

log = logging.getLogger(__name__)


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class AccountClusters:
    """The clusters of one account while its row is locked: place posts, expire, evict."""

    def __init__(
        self, session: Session, account_id: int, *, active: set[int], config: d.SurgeConfig
    ) -> None:
        self.session = session
        self.account_id = account_id
        self.active = set(active)
        self.config = config
        self.clusters: list[SurgeCluster] = list(
            session.execute(
                select(SurgeCluster)
                .where(SurgeCluster.account_id == account_id)
                .order_by(SurgeCluster.id)
            ).scalars()
        )
        self._cent: dict[int, np.ndarray] = {id(c): d.from_bytes(c.centroid) for c in self.clusters}
        self._touched: list[SurgeCluster] = []
        self.seen = {int(e[1]) for c in self.clusters for e in c.recent}

    def centroid(self, cluster: SurgeCluster) -> np.ndarray:
        return self._cent[id(cluster)]

    def pin(self, surge_id: int) -> None:
        self.active.add(surge_id)

    def _pinned(self, cluster: SurgeCluster) -> bool:
        return cluster.surge_id is not None and cluster.surge_id in self.active

    def _drop(self, cluster: SurgeCluster) -> None:
        self.clusters.remove(cluster)
        self._cent.pop(id(cluster), None)
        if cluster in self._touched:
            self._touched.remove(cluster)
        if cluster.id is not None:
            self.session.delete(cluster)
        else:
            self.session.expunge(cluster)

    def _expire(self, now: datetime) -> None:
        # A surge's cluster ends too once its posts stop: the incident stays open for the
        # lead, but a later outage starts a cluster (and a surge) of its own.
        cutoff = now - self.config.cluster_ttl
        for cluster in [c for c in self.clusters if c.last_at < cutoff]:
            self._drop(cluster)

    def _make_room(self) -> bool:
        while len(self.clusters) >= self.config.max_clusters:
            free = [c for c in self.clusters if not self._pinned(c)]
            if not free:
                return False
            self._drop(min(free, key=lambda c: (c.last_at, c.size)))
        return True

    def place(
        self, post: ObservedPost, *, text: str, author: str | None
    ) -> tuple[SurgeCluster, float] | None:
        """Join the post to its closest cluster or start one; None when it cannot be placed
        (seen before, or an unusable embedding: logged, and the post goes on unclustered)."""
        if post.post_id in self.seen:
            return None
        try:
            vec = d.as_unit(post.embedding)
        except ValueError as exc:
            log.warning("post %s not clustered: %s", post.post_id, exc)
            return None
        if self.clusters and vec.shape != self._cent[id(self.clusters[0])].shape:
            log.warning("post %s not clustered: embedding of %d values", post.post_id, vec.size)
            return None
        self.seen.add(post.post_id)
        self._expire(post.created_at)
        cents = np.stack([self._cent[id(c)] for c in self.clusters]) if self.clusters else None
        index, sim = (
            d.best_match(cents, vec, self.config.join_threshold) if cents is not None else (-1, 0)
        )
        entry: list[Any] = [post.created_at.timestamp(), post.post_id, author or str(post.post_id)]
        if index >= 0:
            cluster = self.clusters[index]
            self._cent[id(cluster)] = d.joined(self._cent[id(cluster)], cluster.size, vec)
            cluster.centroid = d.to_bytes(self._cent[id(cluster)])
            cluster.size += 1
            cluster.last_at = max(cluster.last_at, post.created_at)
            cluster.recent = [*cluster.recent, [*entry, round(sim, 4)]][-self.config.max_recent :]
        else:
            if not self._make_room():
                return None
            sim = 1.0
            cluster = SurgeCluster(
                account_id=self.account_id,
                centroid=d.to_bytes(vec),
                size=1,
                first_at=post.created_at,
                last_at=post.created_at,
                recent=[[*entry, 1.0]],
                keywords={},
                topics={},
                generation=0,
            )
            self.session.add(cluster)
            self.clusters.append(cluster)
            self._cent[id(cluster)] = vec
        cluster.keywords = d.add_keywords(cluster.keywords, text, self.config.max_keywords)
        topics = dict(cluster.topics)
        topics[post.topic] = int(topics.get(post.topic, 0)) + 1
        cluster.topics = topics
        if cluster not in self._touched:
            self._touched.append(cluster)
        return cluster, float(sim)

    def touched(self) -> list[SurgeCluster]:
        """The clusters this batch changed (flushed, so new ones have ids)."""
        self.session.flush()
        return list(self._touched)

    def window(
        self, cluster: SurgeCluster, *, end: datetime
    ) -> tuple[int, list[tuple[datetime, int, float]]]:
        """Distinct authors, and the joins (time, post id, cosine), in the window up to end."""
        start = (end - self.config.window).timestamp()
        entries = [e for e in cluster.recent if start <= float(e[0]) <= end.timestamp()]
        authors = len({str(e[2]) for e in entries})
        return authors, [(_at(float(e[0])), int(e[1]), float(e[3])) for e in entries]

    def surge_rate(self, surge_id: int) -> float:
        """Posts per hour over the window, across the surge's clusters."""
        mine = [c for c in self.clusters if c.surge_id == surge_id]
        if not mine:
            return 0.0
        end = max(c.last_at for c in mine)
        count = sum(len(self.window(c, end=end)[1]) for c in mine)
        return count / self.config.window_hours

    def trim(self, *, latest: datetime) -> None:
        """Keep only the joins still inside the window (a redelivered post is still seen)."""
        start = (latest - self.config.window - timedelta(seconds=1)).timestamp()
        for cluster in self.clusters:
            kept = [e for e in cluster.recent if float(e[0]) >= start]
            if len(kept) != len(cluster.recent):
                cluster.recent = kept
