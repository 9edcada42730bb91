"""Pure surge detection: online clusters of unit embeddings, keywords, the Poisson tail test.

No I/O: the service loads a account's clusters, runs these, and stores the result.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np

DIM = 384  # the shared MiniLM encoder's embedding size


@dataclass(frozen=True)
class SurgeConfig:
    """How posts are clustered and when a cluster is a surge (bench/surge.py measured these)."""

    join_threshold: float = 0.62  # cosine to a cluster's mean direction to join it
    # A rising cluster this close to a surge's cluster with posts in the same window joins
    # that surge (one outage told two ways). Only surges live in the same window qualify, so
    # two outages at one time become one incident: 0.7 gave 1.19 incidents per injected burst
    # on the bench, 0.8 gave 1.5, with the same recall, precision and times.
    merge_threshold: float = 0.7
    max_clusters: int = 48  # live clusters kept per account; the least recent go first
    cluster_ttl: timedelta = timedelta(hours=2)  # a cluster with no post for this long ends
    window: timedelta = timedelta(minutes=15)  # the rate window
    min_authors: int = 10  # distinct authors in the window before a cluster can be a surge
    min_ratio: float = 4.0  # and at least this many times the usual count for the hour
    p_value: float = 1e-6  # and a Poisson upper tail this unlikely under the usual rate
    floor_per_hour: float = 2.0  # the usual rate is never taken below this
    history: timedelta = timedelta(weeks=6)  # how far back a new account's baseline looks
    max_recent: int = 2000  # joins kept per cluster (only the window's are needed)
    max_keywords: int = 48

    @property
    def window_hours(self) -> float:
        return self.window.total_seconds() / 3600


DEFAULT_CONFIG = SurgeConfig()


def as_unit(vector: Sequence[float] | np.ndarray | Any) -> np.ndarray:
    """A float32 unit vector from a list, tuple, numpy array or torch tensor."""
    if hasattr(vector, "detach"):
        vector = vector.detach().cpu().numpy()
    arr = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(arr))
    if arr.size == 0 or not math.isfinite(norm) or norm == 0.0:
        raise ValueError("an embedding must be a non-empty, finite, non-zero vector")
    return arr / norm


def to_bytes(centroid: np.ndarray) -> bytes:
    return np.asarray(centroid, dtype="<f4").tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def similarities(centroids: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Cosine of vector (unit) to each centroid's direction (rows: running means)."""
    if centroids.size == 0:
        return np.zeros(0, dtype=np.float32)
    norms = np.linalg.norm(centroids, axis=1)
    norms[norms == 0] = 1.0
    result: np.ndarray = (centroids @ vector) / norms
    return result


def best_match(centroids: np.ndarray, vector: np.ndarray, threshold: float) -> tuple[int, float]:
    """(index of the closest centroid, its cosine), index -1 when none reaches threshold."""
    sims = similarities(centroids, vector)
    if sims.size == 0:
        return -1, 0.0
    i = int(np.argmax(sims))
    sim = float(sims[i])
    return (i if sim >= threshold else -1), sim


def joined(centroid: np.ndarray, size: int, vector: np.ndarray) -> np.ndarray:
    """The running mean after one more unit vector."""
    result: np.ndarray = (centroid * size + vector) / (size + 1)
    return result.astype(np.float32)


_WORD = re.compile(r"[a-z][a-z0-9']{2,}")
_NOISE = re.compile(r"(?:https?://|www\.)\S+|@\w+|#", re.IGNORECASE)
_STOP_TEXT = """the and for are but not you your yours with this that have has had was were
    will would
    can could should just get got its it's i'm i've im ive dont don't can't cant won't wont
    didn't isn't doesn't what when where which who why how all any our out from they them their
    there then than too very been being into about again also some more most much many only
    over such here him her his she he we us me my mine a an of on in to is it be do does did so
    if or as at by no yes one two now still even ever every please pls plz thanks thank hey
    hi hello guys help anyone else know like really why's let lol omg"""
STOPWORDS = frozenset(_STOP_TEXT.split())


def keywords_of(text: str) -> list[str]:
    """Content words of a post: lowercase, no mentions, links or stopwords."""
    words = _WORD.findall(_NOISE.sub(" ", text).lower())
    return [w.strip("'") for w in words if w.strip("'") not in STOPWORDS]


def add_keywords(counts: Mapping[str, int], text: str, cap: int) -> dict[str, int]:
    """counts with the text's words added once each; the rarest dropped beyond cap."""
    out = dict(counts)
    for word in set(keywords_of(text)):
        out[word] = int(out.get(word, 0)) + 1
    if len(out) > cap:
        keep = sorted(out.items(), key=lambda kv: (-int(kv[1]), kv[0]))[:cap]
        out = dict(keep)
    return out


def top_keywords(counts: Mapping[str, int], n: int = 3) -> list[str]:
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-int(kv[1]), kv[0]))[:n]]


def main_topic(topics: Mapping[str, int]) -> str:
    """The most frequent topic, a real one ahead of 'other' on a tie."""
    if not topics:
        return "other"
    return max(topics.items(), key=lambda kv: (int(kv[1]), kv[0] != "other", kv[0]))[0]


def title_for(topic: str, keywords: list[str]) -> str:
    """'Outage: play, songs, down'."""
    head = topic.capitalize()
    return f"{head}: {', '.join(keywords)}" if keywords else head


def poisson_upper_tail(n: int, mu: float) -> float:
    """P(N >= n) for N ~ Poisson(mu); 1.0 when n is not above mu (only the upper tail
    matters here)."""
    if n <= 0:
        return 1.0
    if mu <= 0:
        return 0.0
    if n <= mu:
        return 1.0
    term = math.exp(-mu + n * math.log(mu) - math.lgamma(n + 1))
    total, k = 0.0, n
    while term > 1e-300 and k < n + 10_000:
        total += term
        k += 1
        term *= mu / k
        if term < total * 1e-16:
            break
    return min(1.0, total)


@dataclass(frozen=True)
class Verdict:
    """The surge test of one cluster's window."""

    surge: bool
    count: int  # distinct authors in the window
    expected: float  # the usual count in a window at this hour
    p_value: float


def surge_test(count: int, usual_per_hour: float, config: SurgeConfig) -> Verdict:
    """Is `count` (distinct authors in the window) well above the usual rate for the hour?"""
    expected = max(usual_per_hour, config.floor_per_hour) * config.window_hours
    p = poisson_upper_tail(count, expected)
    surge = count >= config.min_authors and count >= config.min_ratio * expected
    return Verdict(surge=surge and p <= config.p_value, count=count, expected=expected, p_value=p)
