"""Routing rules and the urgency formula: pure functions pinned on hand-made cases."""

from __future__ import annotations

import pytest

from socialcare.routing.rules import RouteInput, raise_priority, route
from socialcare.scoring.topics import complaint_signal, topic_of
from socialcare.scoring.urgency import UrgencyInput, priority_for, urgency

THRESHOLDS = (0.70, 0.45, 0.25)


@pytest.mark.parametrize(
    ("inp", "team"),
    [
        (RouteInput("billing", "P1", 0.9, 10, False), "swat"),
        (RouteInput("safety", "P4", 0.1, 10, False), "swat"),
        (RouteInput("other", "P3", 0.3, 2_000_000, True), "swat"),
        (RouteInput("other", "P3", 0.3, 2_000_000, False), "care"),
        (RouteInput("outage", "P2", 0.5, 10, False), "tech"),
        (RouteInput("security", "P3", 0.3, 10, False), "tech"),
        (RouteInput("billing", "P2", 0.5, 10, False), "billing"),
        (RouteInput("question", "P4", 0.1, 10, False), "care"),
    ],
)
def test_rules_send_each_case_to_its_team(inp, team):
    assert route(inp)[0] == team


@pytest.mark.parametrize(("p", "up"), [("P4", "P3"), ("P3", "P2"), ("P2", "P1"), ("P1", "P1")])
def test_aging_raises_priority_one_level_and_stops_at_p1(p, up):
    assert raise_priority(p) == up


@pytest.mark.parametrize(
    ("score", "priority"), [(0.95, "P1"), (0.70, "P1"), (0.5, "P2"), (0.3, "P3"), (0.1, "P4")]
)
def test_priority_follows_the_thresholds(score, priority):
    assert priority_for(score, THRESHOLDS) == priority


def _u(**kw):
    base = {"negative": 0.1, "topic": "other", "complaint": 0.0}
    return urgency(UrgencyInput(**{**base, **kw}))


def test_a_furious_verified_author_during_an_outage_outranks_a_mild_question():
    text = "Your service is DOWN again!!! worst outage ever, still waiting"
    furious = _u(
        negative=0.97,
        topic=topic_of(text),
        complaint=complaint_signal(text),
        followers=250_000,
        verified=True,
        prior_unanswered=2,
        waited_seconds=1800,
        metrics={"like_count": 300, "retweet_count": 120},
    )
    mild = _u(negative=0.1, topic=topic_of("how do I change my plan?"), followers=12)
    assert topic_of(text) == "outage"
    assert furious.score > mild.score
    assert priority_for(furious.score, THRESHOLDS) == "P1"
    assert priority_for(mild.score, THRESHOLDS) == "P4"


def test_praise_never_outranks_a_complaint_even_from_a_huge_audience():
    praise = _u(
        negative=0.0,
        topic="praise",
        followers=50_000_000,
        verified=True,
        metrics={"like_count": 10_000},
    )
    complaint = _u(negative=0.6, topic="billing", complaint=0.34, followers=3)
    assert praise.score < complaint.score


def test_every_reason_carries_signal_value_weight_and_the_weights_sum_to_one():
    result = _u(negative=0.5, topic="billing", followers=1000)
    assert {r["signal"] for r in result.reasons} == {
        "negativity",
        "topic",
        "complaint",
        "reach",
        "repeat_contact",
        "engagement",
        "engagement_growth",
        "waiting",
    }
    assert sum(r["weight"] for r in result.reasons) == pytest.approx(1.0)
    assert result.score == pytest.approx(sum(r["contribution"] for r in result.reasons), abs=1e-3)
    assert all(0.0 <= r["value"] <= 1.0 for r in result.reasons)


def test_a_complaint_gaining_reposts_fast_outranks_the_same_complaint_sitting_still():
    still = _u(negative=0.8, topic="billing", complaint=0.7, followers=500, engagement_per_hour=0)
    spreading = _u(
        negative=0.8, topic="billing", complaint=0.7, followers=500, engagement_per_hour=400
    )
    assert spreading.score > still.score
    growth = next(r for r in spreading.reasons if r["signal"] == "engagement_growth")
    assert growth["detail"] == "+400 interactions/h"
    assert growth["value"] == pytest.approx(0.867, abs=1e-3)  # log10(401) / 3


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("my card was charged twice, I want a refund", "billing"),
        ("app keeps crashing after the update", "outage"),
        ("someone hacked my account", "security"),
        ("my package never arrived", "delivery"),
        ("I'm cancelling and switching to your competitor", "churn"),
        ("thank you so much, great help", "praise"),
        ("there was smoke coming out of the charger", "safety"),
        ("my lawyer will hear about this", "legal"),
        ("what time do you open?", "question"),
        ("hello", "other"),
    ],
)
def test_topics_from_text(text, topic):
    assert topic_of(text) == topic
