"""Property tests: topics, urgency, priorities and routing never crash and keep their invariants.

Any text, any float (NaN and infinities included), any follower count (None, negative, larger
than a float) and any metrics dict: the score stays a number in [0, 1] with its reasons, the
priority follows the score monotonically and every case lands in a team's queue.
The example-based tests at the end pin the crashes these properties found.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from socialcare.routing.rules import (
    DEFAULT_RULES,
    FALLBACK_TEAM,
    PRIORITY_ORDER,
    RouteInput,
    Rule,
    raise_priority,
    route,
)
from socialcare.scoring.topics import TOPIC_SEVERITY, complaint_signal, topic_of
from socialcare.scoring.urgency import (
    CALM_CAP,
    CALM_TOPICS,
    WEIGHTS,
    UrgencyInput,
    engagement_signal,
    priority_for,
    reach_signal,
    urgency,
)

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text of any kind, lone surrogates included (a str can hold them even if no file can).
any_text = st.text(st.characters(exclude_categories=[]), max_size=80)
topic_texts = st.one_of(
    any_text,
    st.lists(
        st.sampled_from(
            [
                "fire",
                "lawsuit",
                "hacked",
                "outage",
                "refund",
                "package",
                "cancel",
                "how do I",
                "thanks",
                "giveaway",
                "worst",
                "still waiting",
                "!!!",
                "???",
                "again",
            ]
        )
        | any_text,
        max_size=6,
    ).map(" ".join),
)
# Floats of every kind: NaN, both infinities, negatives, subnormals, huge.
any_float = st.floats()
# Counts as a platform might deliver them: None, negative, or too large for a float.
any_count = st.one_of(
    st.none(),
    st.integers(),
    st.sampled_from([-(10**30), 10**12, 10**400, 10**5000]),
)
metric_values = st.one_of(
    st.none(),
    st.booleans(),
    any_float,
    any_count,
    any_text,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(any_text, st.integers(), max_size=2),
)
any_metrics = st.dictionaries(
    st.one_of(
        st.sampled_from(["like_count", "retweet_count", "reply_count", "quote_count"]), any_text
    ),
    metric_values,
    max_size=6,
)
any_topic = st.one_of(st.sampled_from(sorted(TOPIC_SEVERITY)), any_text)
urgency_inputs = st.builds(
    UrgencyInput,
    negative=any_float,
    topic=any_topic,
    complaint=any_float,
    followers=any_count,
    verified=st.booleans(),
    metrics=any_metrics,
    prior_unanswered=st.integers() | st.sampled_from([10**400, -(10**400)]),
    waited_seconds=any_float,
    reference_sla_seconds=any_float,
)
any_priority = st.one_of(st.sampled_from(PRIORITY_ORDER), any_text)


def rank(priority: str) -> int:
    return PRIORITY_ORDER.index(priority)


def is_unit(value: Any) -> bool:
    return isinstance(value, float) and not math.isnan(value) and 0.0 <= value <= 1.0


# ---------------------------------------------------------------------------------------------
# Topics
# ---------------------------------------------------------------------------------------------


@PROPERTY
@given(text=topic_texts)
def test_any_text_has_a_known_topic_and_a_complaint_signal_in_the_unit_interval(
    text: str,
) -> None:
    assert topic_of(text) in TOPIC_SEVERITY
    signal = complaint_signal(text)
    assert is_unit(signal)


@PROPERTY
@given(text=topic_texts)
def test_a_safety_word_outranks_every_other_topic_in_the_text(text: str) -> None:
    assert topic_of(f"{text} fire ") == "safety"


@PROPERTY
@given(text=topic_texts)
def test_more_complaint_markers_never_lower_the_complaint_signal(text: str) -> None:
    assert complaint_signal(f"{text} worst ") >= complaint_signal(text)


# ---------------------------------------------------------------------------------------------
# Urgency
# ---------------------------------------------------------------------------------------------


@PROPERTY
@given(inp=urgency_inputs)
@example(
    inp=UrgencyInput(
        negative=math.nan,
        topic="billing",
        complaint=math.nan,
        followers=10**5000,
        metrics={"like_count": -5, "retweet_count": 10**400, "reply_count": math.nan},
        prior_unanswered=10**400,
        waited_seconds=math.inf,
        reference_sla_seconds=0.0,
    )
)
def test_urgency_is_a_number_in_the_unit_interval_with_reasons_for_any_input(
    inp: UrgencyInput,
) -> None:
    result = urgency(inp)
    assert is_unit(result.score)
    signals = [r for r in result.reasons if r["signal"] != "calm_topic_cap"]
    assert [r["signal"] for r in signals] == list(WEIGHTS)
    assert math.isclose(sum(r["weight"] for r in signals), 1.0)
    for reason in signals:
        assert is_unit(reason["value"])
        assert reason["weight"] == WEIGHTS[reason["signal"]]
        assert math.isclose(
            reason["contribution"], reason["value"] * reason["weight"], abs_tol=1e-4
        )
        assert isinstance(reason["detail"], str)
    uncapped = sum(r["contribution"] for r in signals)
    expected = min(uncapped, CALM_CAP) if inp.topic in CALM_TOPICS else uncapped
    assert math.isclose(result.score, expected, abs_tol=1e-3)
    # Reasons are stored as JSON: strict JSON has no NaN or infinity.
    json.dumps(result.reasons, allow_nan=False)


@PROPERTY
@given(inp=urgency_inputs, topic=st.sampled_from(CALM_TOPICS))
def test_praise_and_spam_never_score_above_the_calm_cap(inp: UrgencyInput, topic: str) -> None:
    result = urgency(replace(inp, topic=topic))
    assert result.score <= CALM_CAP
    capped = [r for r in result.reasons if r["signal"] == "calm_topic_cap"]
    uncapped = sum(r["contribution"] for r in result.reasons if r not in capped)
    assert len(capped) <= 1
    if capped:
        assert uncapped >= CALM_CAP - 1e-3
        assert capped[0]["contribution"] == 0.0
    else:
        assert uncapped <= CALM_CAP + 1e-3


@PROPERTY
@given(inp=urgency_inputs, low=any_float, high=any_float)
def test_more_negativity_never_lowers_urgency(inp: UrgencyInput, low: float, high: float) -> None:
    if math.isnan(low) or math.isnan(high):
        return
    low, high = sorted((low, high))
    first = urgency(replace(inp, negative=low))
    second = urgency(replace(inp, negative=high))
    assert second.score >= first.score


@PROPERTY
@given(followers=any_count, more=st.integers(min_value=0), verified=st.booleans())
def test_reach_is_in_the_unit_interval_and_grows_with_followers(
    followers: int | None, more: int, verified: bool
) -> None:
    reach = reach_signal(followers, verified)
    assert is_unit(reach)
    bigger = max(0, followers or 0) + more
    assert reach_signal(bigger, verified) >= reach
    assert reach_signal(followers, True) >= reach_signal(followers, False)


@PROPERTY
@given(metrics=any_metrics, extra=st.integers(min_value=0, max_value=10**6))
def test_engagement_is_in_the_unit_interval_and_grows_with_likes(
    metrics: dict[str, Any], extra: int
) -> None:
    engagement = engagement_signal(metrics)
    assert is_unit(engagement)
    likes = metrics.get("like_count")
    if isinstance(likes, int) and not isinstance(likes, bool) and 0 <= likes <= 10**9:
        assert engagement_signal({**metrics, "like_count": likes + extra}) >= engagement


# ---------------------------------------------------------------------------------------------
# Priorities
# ---------------------------------------------------------------------------------------------

thresholds = st.tuples(any_float, any_float, any_float)
settings_thresholds = st.lists(st.floats(min_value=0, max_value=1), min_size=3, max_size=3).map(
    lambda t: tuple(sorted(t, reverse=True))
)


@PROPERTY
@given(score=any_float, limits=thresholds)
def test_any_score_and_thresholds_give_one_of_the_four_priorities(
    score: float, limits: tuple[float, float, float]
) -> None:
    assert priority_for(score, limits) in PRIORITY_ORDER


@PROPERTY
@given(low=any_float, high=any_float, limits=thresholds)
def test_a_higher_score_never_gives_a_less_urgent_priority(
    low: float, high: float, limits: tuple[float, float, float]
) -> None:
    if math.isnan(low) or math.isnan(high):
        return
    low, high = sorted((low, high))
    assert rank(priority_for(high, limits)) <= rank(priority_for(low, limits))


@PROPERTY
@given(score=st.floats(min_value=0, max_value=1), limits=settings_thresholds)
def test_with_valid_thresholds_the_priority_is_the_band_the_score_falls_in(
    score: float, limits: tuple[float, float, float]
) -> None:
    priority = priority_for(score, limits)
    passed = sum(score >= t for t in limits)
    assert priority == PRIORITY_ORDER[3 - passed]


@PROPERTY
@given(priority=any_priority)
def test_raising_a_priority_moves_it_one_level_up_and_rejects_unknown_ones(
    priority: str,
) -> None:
    if priority not in PRIORITY_ORDER:
        with pytest.raises(ValueError, match="unknown priority"):
            raise_priority(priority)
        return
    raised = raise_priority(priority)
    assert rank(raised) == max(0, rank(priority) - 1)


# ---------------------------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------------------------

route_inputs = st.builds(
    RouteInput,
    topic=any_topic,
    priority=any_priority,
    urgency=any_float,
    followers=any_count,
    verified=st.booleans(),
)
rules = st.builds(
    Rule,
    name=any_text,
    team=st.sampled_from(["swat", "tech", "billing", "care", "vip"]),
    topics=st.none() | st.lists(any_topic, max_size=3).map(tuple),
    max_priority=st.none() | st.sampled_from(PRIORITY_ORDER),
    min_followers=st.none() | any_count,
    verified=st.none() | st.booleans(),
)


@PROPERTY
@given(inp=route_inputs)
def test_the_default_rules_send_every_case_to_a_known_team(inp: RouteInput) -> None:
    team, rule = route(inp)
    names = {r.name: r.team for r in DEFAULT_RULES}
    assert (team, rule) == (FALLBACK_TEAM, "fallback") or names.get(rule) == team


@PROPERTY
@given(inp=route_inputs, ruleset=st.lists(rules, max_size=5).map(tuple))
def test_any_rules_send_every_case_to_the_first_matching_rules_team_or_the_fallback(
    inp: RouteInput, ruleset: tuple[Rule, ...]
) -> None:
    team, name = route(inp, ruleset)
    matching = [r for r in ruleset if r.matches(inp)]
    if matching:
        assert (team, name) == (matching[0].team, matching[0].name)
    else:
        assert (team, name) == (FALLBACK_TEAM, "fallback")


@PROPERTY
@given(inp=route_inputs, limit=st.sampled_from(PRIORITY_ORDER))
def test_a_priority_condition_holds_exactly_for_that_priority_or_a_more_urgent_one(
    inp: RouteInput, limit: str
) -> None:
    rule = Rule("urgent", "swat", max_priority=limit)
    known = inp.priority in PRIORITY_ORDER
    assert rule.matches(inp) == (known and rank(inp.priority) <= rank(limit))


# ---------------------------------------------------------------------------------------------
# Regressions: each input below once raised ValueError, OverflowError or ZeroDivisionError,
# or let a NaN into the stored reasons.
# ---------------------------------------------------------------------------------------------

BASE = UrgencyInput(negative=0.5, topic="billing", complaint=0.0)


@pytest.mark.parametrize(
    "change",
    [
        {"waited_seconds": math.nan},
        {"waited_seconds": math.inf},
        {"reference_sla_seconds": 0.0},
        {"reference_sla_seconds": -60.0},
        {"reference_sla_seconds": math.nan},
        {"prior_unanswered": 10**400},
        {"metrics": {"like_count": -5}},
        {"metrics": {"like_count": 10**400}},
        {"metrics": {"like_count": math.nan}},
        {"followers": 10**5000},
    ],
    ids=[
        "nan-wait",
        "infinite-wait",
        "zero-sla",
        "negative-sla",
        "nan-sla",
        "huge-prior-count",
        "negative-likes",
        "huge-likes",
        "nan-likes",
        "5000-digit-followers",
    ],
)
def test_an_input_that_crashed_urgency_now_gives_a_score_in_the_unit_interval(
    change: dict[str, Any],
) -> None:
    result = urgency(replace(BASE, **change))
    assert is_unit(result.score)
    json.dumps(result.reasons, allow_nan=False)


def test_a_nan_complaint_counts_as_none_instead_of_zeroing_the_whole_score() -> None:
    plain = urgency(BASE)
    nan = urgency(replace(BASE, complaint=math.nan))
    assert nan.score == plain.score > 0


def test_out_of_range_signals_are_clamped_before_weighting() -> None:
    result = urgency(
        UrgencyInput(
            negative=-3.0, topic="billing", complaint=7.0, prior_unanswered=-4, waited_seconds=-9
        )
    )
    values = {r["signal"]: r["value"] for r in result.reasons}
    assert values["negativity"] == 0.0
    assert values["complaint"] == 1.0
    assert values["repeat_contact"] == 0.0
    assert values["waiting"] == 0.0


def test_an_unknown_priority_meets_no_priority_condition_instead_of_crashing_the_router() -> None:
    inp = RouteInput("billing", "urgent!", 0.9, 10, False)
    assert route(inp) == ("billing", "money to billing")


def test_a_rule_with_an_unknown_max_priority_is_refused_when_it_is_made() -> None:
    with pytest.raises(ValueError, match="max_priority"):
        Rule("typo", "swat", max_priority="P0")
