"""The urgency formula: signals in [0, 1], weighted, summed, explained. Pure: no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from socialcare.scoring.topics import TOPIC_SEVERITY

WEIGHTS = {
    "negativity": 0.25,
    "topic": 0.20,
    "complaint": 0.15,
    "reach": 0.15,
    "repeat_contact": 0.10,
    "engagement": 0.05,
    "engagement_growth": 0.05,
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
    engagement_per_hour: float | None = None  # interactions an hour (None: not measured)
    prior_unanswered: int = 0  # the same author's earlier posts still waiting
    waited_seconds: float = 0.0  # public time until scoring
    reference_sla_seconds: float = 3600.0
    complaint_source: str = "complaint markers"  # what gave the complaint value


@dataclass(frozen=True)
class Urgency:
    score: float
    reasons: list[dict[str, Any]]


# Counts beyond these saturate their signal long before; larger ones (or absurd values from a
# platform) are clamped so the arithmetic and the reason texts stay finite.
_MAX_COUNT = 10**12
_DEFAULT_SLA_SECONDS = 3600.0


def _unit(value: float) -> float:
    """value clamped to [0, 1]; NaN (no information) counts as 0."""
    if value != value:  # NaN; also safe for ints too large for a float
        return 0.0
    return float(min(1.0, max(0.0, value)))


def _count(value: object) -> float:
    """A non-negative count from a platform value, at most _MAX_COUNT: anything that is not a
    number (a bool, a string, NaN) counts as 0, a negative as 0, an infinity as the cap."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0.0
    return float(min(max(value, 0), _MAX_COUNT))


def reach_signal(followers: int | None, verified: bool) -> float:
    """log10 of the audience on a scale where a million followers is 1; verified adds 0.2."""
    base = math.log10(_count(followers) + 1) / 6
    return min(1.0, base + (0.2 if verified else 0.0))


def engagement_total(metrics: dict[str, Any]) -> float:
    """Interactions on a post: likes, replies and quotes, reposts counted twice (they spread it)."""

    def num(key: str) -> float:
        return _count(metrics.get(key))

    return num("like_count") + 2 * num("retweet_count") + num("reply_count") + num("quote_count")


def engagement_signal(metrics: dict[str, Any]) -> float:
    """Likes, reposts, replies and quotes on a log scale where 1,000 is 1."""
    return min(1.0, math.log10(1 + engagement_total(metrics)) / 3)


def growth_signal(per_hour: float | None) -> float:
    """Interactions gained an hour on a log scale where 1,000 an hour is 1; unmeasured is 0."""
    return min(1.0, math.log10(1 + _count(per_hour)) / 3)


def _waiting(waited_seconds: float, reference_sla_seconds: float) -> tuple[float, float]:
    """(signal, seconds waited): the wait as a share of the reference SLA, clamped to [0, 1].

    A reference that is not a positive finite number falls back to an hour; a NaN wait is none.
    """
    waited = 0.0 if waited_seconds != waited_seconds else max(0.0, float(waited_seconds))
    reference = float(reference_sla_seconds)
    if not (math.isfinite(reference) and reference > 0):
        reference = _DEFAULT_SLA_SECONDS
    return _unit(waited / reference), waited


def _visibility(
    followers: int | None, verified: bool, metrics: dict[str, Any], per_hour: float | None
) -> dict[str, tuple[float, str]]:
    """The signals a later observation of the post can change: reach and engagement."""
    count = int(_count(followers))
    return {
        "reach": (
            reach_signal(count, verified),
            f"{count} followers" + (", verified" if verified else ""),
        ),
        "engagement": (engagement_signal(metrics), "likes, reposts, replies, quotes"),
        "engagement_growth": (
            growth_signal(per_hour),
            "not measured" if per_hour is None else f"+{_count(per_hour):.0f} interactions/h",
        ),
    }


def _combine(signals: dict[str, tuple[float, str]], topic: str) -> Urgency:
    """Weighted sum of the signals with their reasons, praise and spam capped."""
    reasons: list[dict[str, Any]] = [
        {
            "signal": name,
            "value": round(value, 4),
            "weight": weight,
            "contribution": round(value * weight, 4),
            "detail": detail,
        }
        for name, weight in WEIGHTS.items()
        for value, detail in [signals[name]]
    ]
    score = float(sum(r["value"] * r["weight"] for r in reasons))
    if topic in CALM_TOPICS and score > CALM_CAP:
        score = CALM_CAP
        reasons.append(
            {
                "signal": "calm_topic_cap",
                "value": CALM_CAP,
                "weight": 1.0,
                "contribution": 0.0,
                "detail": f"{topic} capped at {CALM_CAP}",
            }
        )
    return Urgency(score=round(_unit(score), 4), reasons=reasons)


def urgency(inp: UrgencyInput) -> Urgency:
    """Weighted sum of the signals in [0, 1], with each signal's value, weight and detail.

    Inputs are sanitised first: each signal is clamped to [0, 1] and NaN counts as 0, so the
    score is always a number in [0, 1] whatever the model or the platform delivered.
    """
    prior = int(_count(inp.prior_unanswered))
    waiting, waited = _waiting(inp.waited_seconds, inp.reference_sla_seconds)
    signals: dict[str, tuple[float, str]] = {
        "negativity": (_unit(inp.negative), f"p(negative)={inp.negative:.2f}"),
        "topic": (TOPIC_SEVERITY.get(inp.topic, TOPIC_SEVERITY["other"]), inp.topic),
        "complaint": (_unit(inp.complaint), inp.complaint_source),
        "repeat_contact": (min(1.0, prior / 3), f"{prior} earlier unanswered"),
        "waiting": (waiting, f"waited {waited:.0f}s"),
        **_visibility(inp.followers, inp.verified, inp.metrics, inp.engagement_per_hour),
    }
    return _combine(signals, inp.topic)


def rescore(
    reasons: list[dict[str, Any]],
    *,
    topic: str,
    followers: int | None,
    verified: bool,
    metrics: dict[str, Any],
    engagement_per_hour: float | None,
) -> Urgency:
    """The urgency again after a later poll saw the post with a new audience or engagement: the
    text signals keep the values stored with the score, the visibility signals are recomputed."""
    kept = {
        str(r["signal"]): (_unit(float(r["value"])), str(r.get("detail", "")))
        for r in reasons
        if r.get("signal") in WEIGHTS
    }
    missing = {name: (0.0, "not measured") for name in WEIGHTS if name not in kept}
    signals = {
        **missing,
        **kept,
        **_visibility(followers, verified, metrics, engagement_per_hour),
    }
    return _combine(signals, topic)


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
