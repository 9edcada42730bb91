"""One rough duration format: the queue's SLA labels, first-response times and chart axes agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from matplotlib.figure import Figure

from socialcare.metrics import charts
from socialcare.metrics.digest_format import short_duration
from socialcare.web.queries import response_time, sla_state

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(45, "due in 45s"), (14 * 60 + 59, "due in 14m"), (2 * 3600 + 300, "due in 2h 05m")],
)
def test_sla_labels_use_the_short_duration(seconds: int, label: str) -> None:
    assert sla_state(NOW + timedelta(seconds=seconds), None, NOW) == (label, False)
    overdue = sla_state(NOW - timedelta(seconds=seconds), None, NOW)
    assert overdue == (label.replace("due in", "overdue by"), True)


def test_a_late_first_response_says_by_how_much() -> None:
    due = NOW - timedelta(days=3, hours=4, minutes=20)
    assert sla_state(due, NOW, NOW) == ("missed by 3d 4h", True)


def test_response_times_beyond_an_hour_are_short_durations() -> None:
    assert response_time(245) == "4m 05s"
    assert response_time(7500) == short_duration(7500) == "2h 05m"


@pytest.mark.parametrize("top", [40.0, 1800.0, 9000.0, 3 * 86400.0])
def test_chart_axes_label_their_ticks_as_the_pages_do(top: float) -> None:
    ax = Figure().add_subplot()
    charts._duration_axis(ax, top)
    formatter = ax.yaxis.get_major_formatter()
    ticks = [t for t in ax.get_yticks() if 0 < t <= top]
    assert ticks
    assert [formatter(t, 0) for t in ticks] == [short_duration(t) for t in ticks]
    assert len({formatter(t, 0) for t in ticks}) == len(ticks)  # no two ticks read alike
