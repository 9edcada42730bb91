"""Digest charts are real PNGs drawn by matplotlib, with data and without."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from socialcare.metrics import charts
from socialcare.metrics.digest_model import TrendPoint
from tests.metrics.digest_samples import empty_digest, png_size, sample_digest

DRAWINGS = sorted(charts.CHARTS.items())
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("name", "draw"), DRAWINGS)
def test_each_chart_is_a_png_for_a_full_week(name: str, draw: charts.ChartFn) -> None:
    height, width = png_size(draw(sample_digest()))
    assert (height, width) == (320, 700)


@pytest.mark.parametrize(("name", "draw"), DRAWINGS)
def test_each_chart_is_a_png_that_says_no_data_when_empty(name: str, draw: charts.ChartFn) -> None:
    empty = draw(empty_digest())
    assert png_size(empty) == (320, 700)
    assert empty != draw(sample_digest())


def test_a_trend_of_days_without_answers_is_drawn_as_no_data() -> None:
    day = sample_digest().trend[0].day
    silent = [TrendPoint(day=day, p50_s=None, p90_s=None, sla_attainment=None, cases=3)]
    digest = replace(sample_digest(), trend=silent)
    assert charts.trend_png(digest) == charts.trend_png(empty_digest())


def test_a_single_response_time_still_draws_a_histogram() -> None:
    digest = replace(sample_digest(), first_response_seconds=[0.0])
    assert png_size(charts.distribution_png(digest)) == (320, 700)


def test_charts_draw_the_same_picture_from_several_threads_at_once() -> None:
    digest = sample_digest()
    with ThreadPoolExecutor(max_workers=4) as pool:
        pngs = list(pool.map(lambda _: charts.trend_png(digest), range(8)))
    assert len(set(pngs)) == 1


def test_drawing_charts_neither_imports_pyplot_nor_picks_a_global_backend() -> None:
    script = (
        "import sys, matplotlib\n"
        "from socialcare.metrics.charts import render_charts\n"
        "from tests.metrics.digest_samples import sample_digest\n"
        "before = matplotlib.rcParams._get_backend_or_none()\n"
        "assert len(render_charts(sample_digest())) == 4\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert matplotlib.rcParams._get_backend_or_none() == before\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_render_charts_names_every_chart() -> None:
    drawn = charts.render_charts(sample_digest())
    assert set(drawn) == {"distribution", "trend", "sla_trend", "volume"}
    assert all(png_size(png) == (320, 700) for png in drawn.values())
