"""The pure parts of detection: the Poisson tail, the hour-of-week baseline, the test, labels."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from socialcare.surge import detector as d
from socialcare.surge.baseline import Baseline, epoch_hour, hour_of_week

MONDAY = datetime(2024, 5, 6, tzinfo=UTC)


@pytest.mark.parametrize(("n", "mu"), [(1, 0.5), (5, 1.0), (12, 2.5), (30, 10.0), (3, 2.9)])
def test_the_poisson_tail_equals_one_minus_the_cdf(n, mu):
    cdf = sum(math.exp(-mu) * mu**k / math.factorial(k) for k in range(n))
    assert d.poisson_upper_tail(n, mu) == pytest.approx(1 - cdf, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(
    ("when", "bin_"),
    [(MONDAY, 0), (MONDAY + timedelta(hours=9, minutes=59), 9), (MONDAY - timedelta(hours=1), 167)],
)
def test_hours_of_the_week_start_on_monday_utc(when, bin_):
    assert hour_of_week(epoch_hour(when)) == bin_


def test_the_baseline_learns_each_hour_of_the_week_from_history():
    # Three weeks: 12 posts every Monday 09:00 hour, 1 post every other hour.
    times = []
    for week in range(3):
        for hour in range(168):
            start = MONDAY + timedelta(weeks=week, hours=hour)
            times += [start + timedelta(minutes=m) for m in range(0, 60, 5 if hour == 9 else 60)]
    base = Baseline.from_history(times, until=MONDAY + timedelta(weeks=3))
    assert base.expected(MONDAY + timedelta(weeks=3, hours=9, minutes=30)) == pytest.approx(12)
    assert base.expected(MONDAY + timedelta(weeks=3, hours=3)) == pytest.approx(1)
    restored = Baseline.from_json(base.to_json())
    assert restored.expected(MONDAY + timedelta(hours=9)) == pytest.approx(12)


def test_an_hour_without_posts_folds_in_as_zero():
    base = Baseline()
    base.add(MONDAY)
    base.add(MONDAY + timedelta(hours=2))  # closes hour 0 (one post) and the empty hour 1
    assert base.seen[0] == 1 and base.rates[0] == 1.0
    assert base.seen[1] == 1 and base.rates[1] == 0.0
    assert base.count == 1


@pytest.mark.parametrize(
    ("authors", "usual", "surge"),
    [(12, 2.0, True), (12, 40.0, False), (9, 0.5, False), (60, 40.0, True), (20, 30.0, False)],
)
def test_a_cluster_is_a_surge_only_well_above_the_usual_rate(authors, usual, surge):
    assert d.surge_test(authors, usual, d.DEFAULT_CONFIG).surge is surge


def test_running_means_and_similarity():
    a = d.as_unit([1.0, 0.0])
    b = d.as_unit([0.0, 2.0])
    mean = d.joined(a, 1, b)
    assert d.similarities(mean[None, :], a)[0] == pytest.approx(math.sqrt(0.5))
    assert d.best_match(np.stack([a, b]), d.as_unit([0.1, 1.0]), 0.9)[0] == 1
    assert d.best_match(np.stack([a, b]), d.as_unit([1.0, 1.0]), 0.9)[0] == -1
    with pytest.raises(ValueError):
        d.as_unit([0.0, 0.0])
    assert np.array_equal(d.from_bytes(d.to_bytes(mean)), mean)


def test_keywords_and_titles_leave_out_mentions_links_and_stopwords():
    counts: dict[str, int] = {}
    for text in (
        "@SpotifyCares spotify won't play any songs https://t.co/x",
        "songs won't play on Spotify!!",
        "@Spotify is spotify down? songs not loading",
    ):
        counts = d.add_keywords(counts, text, cap=48)
    assert d.top_keywords(counts) == ["songs", "spotify", "play"]
    assert "spotifycares" not in counts and "https" not in counts
    assert d.title_for(d.main_topic({"outage": 3, "other": 3}), ["songs"]) == "Outage: songs"
