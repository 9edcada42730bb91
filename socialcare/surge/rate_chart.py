"""The surge page's rate chart: posts joining the surge per interval since its start, against
the count the account's baseline expected in an interval of that length (pure, then a PNG).

Drawn as the reports' charts are (matplotlib's object API on the Agg canvas, never pyplot), and
from numbers and times only: no post text ever reaches the image.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter, date2num
from matplotlib.figure import Figure

POSTS_COLOUR, USUAL_COLOUR, MUTED = "#d62728", "#1f77b4", "#9e9e9e"
# Interval lengths the chart may use: the shortest that keeps it to MAX_BINS bars.
STEPS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
)
MAX_BINS = 72


@dataclass(frozen=True)
class RateSeries:
    """Posts per interval from `start`, and the usual count for one interval."""

    start: datetime
    step: timedelta
    counts: tuple[int, ...]
    usual: float  # the baseline's expected posts in one interval

    @property
    def label(self) -> str:
        minutes = self.step.total_seconds() / 60
        if minutes < 60:
            return "minute" if minutes == 1 else f"{minutes:g} minutes"
        hours = minutes / 60
        return "hour" if hours == 1 else f"{hours:g} hours"


def rate_series(
    times: Sequence[datetime], *, start: datetime, end: datetime, usual_per_hour: float
) -> RateSeries:
    """Bin the surge's post times from its start to `end` (the later of its last post and now,
    as the caller decides); posts before the start or after the end are left out."""
    end = max(end, start + STEPS[0])
    span = end - start
    step = next((s for s in STEPS if span / s <= MAX_BINS), STEPS[-1])
    bins = max(1, math.ceil(span / step))
    counts = [0] * bins
    for when in times:
        i = math.floor((when - start) / step)
        if 0 <= i < bins:
            counts[i] += 1
        elif i == bins and when <= end:
            counts[-1] += 1
    usual = max(0.0, usual_per_hour) * step.total_seconds() / 3600
    return RateSeries(start=start, step=step, counts=tuple(counts), usual=usual)


def rate_png(series: RateSeries) -> bytes:
    """Bars of posts per interval, the usual count as a dashed line."""
    fig = Figure(figsize=(7.0, 3.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    title = f"Posts a {series.label} since the surge began"
    if not any(series.counts):
        ax.set_axis_off()
        ax.set_title(title)
        ax.text(0.5, 0.5, "no posts yet", ha="center", va="center", fontsize=18, color=MUTED)
    else:
        lefts = date2num([series.start + series.step * i for i in range(len(series.counts))])
        width = series.step.total_seconds() / 86400  # matplotlib dates are in days
        ax.bar(
            lefts,
            series.counts,
            width=width * 0.9,
            align="edge",
            color=POSTS_COLOUR,
            alpha=0.8,
            label="posts in the surge",
        )
        ax.axhline(
            series.usual,
            color=USUAL_COLOUR,
            linestyle="--",
            label=f"usual for the hour ({series.usual:.2g})",
        )
        ax.set_ylim(0, max(max(series.counts), series.usual) * 1.15 + 0.5)
        ax.xaxis.set_major_formatter(DateFormatter("%H:%M" if series.step < STEPS[4] else "%d %b"))
        ax.set_xlabel(f"UTC, from {series.start:%Y-%m-%d %H:%M}")
        ax.set_ylabel(f"posts a {series.label}")
        ax.legend(loc="upper right")
        ax.set_title(title)
    out = io.BytesIO()
    fig.savefig(out, format="png", facecolor="white")
    return out.getvalue()
