"""The urgency formula: signals in [0, 1], weighted, summed, explained. Pure: no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from socialcare.scoring.topics import TOPIC_SEVERITY

WEIGHTS = {
    "negativity": 0.30,
    "topic": 0.20,
    "complaint": 0.15,
    "reach": 0.15,
    "repeat_contact": 0.10,
    "engagement": 0.05,
    "waiting": 0.05,
}
# Praise and spam never need a fast answer, whatever else they carry.
CALM_TOPICS = ("praise", "spam")
CALM_CAP = 0.2


@dataclass(frozen=True)
class UrgencyInput:
    negative: float  # sentiment model's probability of negative
    topic: str
    complaint: float
    followers: int | None = None
    verified: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    prior_unanswered: int = 0  # the same author's earlier posts still waiting
    waited_seconds: float = 0.0  # public time until scoring
    reference_sla_seconds: float = 3600.0


@dataclass(frozen=True)
class Urgency:
    score: float
    reasons: list[dict[str, Any]]


def reach_signal(followers: int | None, verified: bool) -> float:
    """log10 of the audience on a scale where a million followers is 1; verified adds 0.2."""
    base = math.log10(max(0, followers or 0) + 1) / 6
    return min(1.0, base + (0.2 if verified else 0.0))


def engagement_signal(metrics: dict[str, Any]) -> float:
    """Likes, reposts, replies and quotes on a log scale where 1,000 is 1."""

    def num(key: str) -> float:
        value = metrics.get(key) or 0
        return float(value) if isinstance(value, int | float) else 0.0

    total = num("like_count") + 2 * num("retweet_count") + num("reply_count") + num("quote_count")
    return min(1.0, math.log10(1 + total) / 3)


def urgency(inp: UrgencyInput) -> Urgency:
    """Weighted sum of the signals in [0, 1], with each signal's value, weight and detail."""
    signals: dict[str, tuple[float, str]] = {
        "negativity": (min(1.0, max(0.0, inp.negative)), f"p(negative)={inp.negative:.2f}"),
        "topic": (TOPIC_SEVERITY.get(inp.topic, TOPIC_SEVERITY["other"]), inp.topic),
        "complaint": (inp.complaint, "complaint markers"),
        "reach": (
            reach_signal(inp.followers, inp.verified),
            f"{inp.followers or 0} followers" + (", verified" if inp.verified else ""),
        ),
        "repeat_contact": (
            min(1.0, inp.prior_unanswered / 3),
            f"{inp.prior_unanswered} earlier unanswered",
        ),
        "engagement": (engagement_signal(inp.metrics), "likes, reposts, replies, quotes"),
        "waiting": (
            min(1.0, max(0.0, inp.waited_seconds) / inp.reference_sla_seconds),
            f"waited {int(inp.waited_seconds)}s",
        ),
    }
    reasons: list[dict[str, Any]] = [
        {
            "signal": name,
            "value": round(value, 4),
            "weight": WEIGHTS[name],
            "contribution": round(value * WEIGHTS[name], 4),
            "detail": detail,
        }
        for name, (value, detail) in signals.items()
    ]
    score = float(sum(r["value"] * r["weight"] for r in reasons))
    if inp.topic in CALM_TOPICS and score > CALM_CAP:
        score = CALM_CAP
        reasons.append(
            {
                "signal": "calm_topic_cap",
                "value": CALM_CAP,
                "weight": 1.0,
                "contribution": 0.0,
                "detail": f"{inp.topic} capped at {CALM_CAP}",
            }
        )
    return Urgency(score=round(min(1.0, max(0.0, score)), 4), reasons=reasons)


def priority_for(score: float, thresholds: tuple[float, float, float]) -> str:
    """P1..P4 from the urgency score and the three descending thresholds."""
    p1, p2, p3 = thresholds
    if score >= p1:
        return "P1"
    if score >= p2:
        return "P2"
    if score >= p3:
        return "P3"
    return "P4"
