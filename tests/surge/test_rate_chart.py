"""The rate chart's series: posts per interval from the surge's start against the usual count."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from socialcare.surge.rate_chart import MAX_BINS, rate_png, rate_series

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _red_pixels(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for r, g, b in image.getdata() if r > 180 and g < 130 and b < 130)


def test_posts_are_counted_per_minute_for_a_short_surge():
    times = [T0, T0 + timedelta(seconds=30), T0 + timedelta(minutes=3, seconds=59)]
    series = rate_series(
        [*times, T0 - timedelta(minutes=1)],
        start=T0,
        end=T0 + timedelta(minutes=10),
        usual_per_hour=6,
    )
    assert series.step == timedelta(minutes=1) and series.label == "minute"
    assert series.counts == (2, 0, 0, 1, 0, 0, 0, 0, 0, 0)  # the post before the start: left out
    assert series.usual == 0.1


def test_a_longer_surge_gets_wider_intervals_and_never_more_than_the_limit():
    times = [T0 + timedelta(minutes=m) for m in (0, 1, 2, 30, 119)]
    series = rate_series(times, start=T0, end=T0 + timedelta(hours=2), usual_per_hour=1.0)
    assert series.step == timedelta(minutes=5) and series.label == "5 minutes"
    assert len(series.counts) == 24 and sum(series.counts) == 5
    assert series.counts[0] == 3 and series.counts[6] == 1 and series.counts[23] == 1
    assert series.usual * 12 == pytest.approx(1.0)
    week = rate_series(times, start=T0, end=T0 + timedelta(days=7), usual_per_hour=1.0)
    assert len(week.counts) <= MAX_BINS and sum(week.counts) == 5


def test_the_png_draws_bars_only_when_there_are_posts():
    busy = rate_series([T0, T0], start=T0, end=T0 + timedelta(minutes=5), usual_per_hour=2)
    quiet = rate_series([], start=T0, end=T0 + timedelta(minutes=5), usual_per_hour=2)
    busy_png, quiet_png = rate_png(busy), rate_png(quiet)
    for png in (busy_png, quiet_png):
        assert Image.open(io.BytesIO(png)).size == (700, 320)
    assert _red_pixels(busy_png) > 500
    assert _red_pixels(quiet_png) == 0
