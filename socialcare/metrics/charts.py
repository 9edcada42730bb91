"""Digest charts as PNG bytes.

Drawn with matplotlib's object API (Figure plus the Agg canvas), never pyplot: no global backend
or figure registry is touched, so charts can be drawn from several threads at once.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from datetime import date

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MultipleLocator, PercentFormatter

from socialcare.metrics.digest_format import short_duration
from socialcare.metrics.digest_model import Digest

P50_COLOUR, P90_COLOUR, SLA_COLOUR, MUTED = "#1f77b4", "#d62728", "#2ca02c", "#9e9e9e"
# Steps a duration axis may use, so ticks land on 5m, 15m, 1h rather than 200s or 400s.
_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
_STEPS_DAYS = (86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400)
_LOG_TICKS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400, 172800)


def _figure() -> Figure:
    fig = Figure(figsize=(7.0, 3.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", facecolor="white")
    return out.getvalue()


def _no_data(title: str) -> bytes:
    fig = _figure()
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=18, color=MUTED)
    return _png(fig)


def _duration_axis(ax: Axes, top: float) -> None:
    """Ticks on round durations up to top seconds, labelled '5m', '1h 30m'."""
    top = max(top, 1.0)
    step = next((s for s in (*_STEPS, *_STEPS_DAYS) if top / s <= 6), _STEPS_DAYS[-1])
    ax.set_ylim(0, math.ceil(top * 1.1 / step) * step)
    ax.yaxis.set_major_locator(MultipleLocator(step))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: short_duration(v)))


def _values(points: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if p is None else float(p) for p in points], dtype=float)


def _day_axis(ax: Axes, days: Sequence[date]) -> None:
    every = max(1, math.ceil(len(days) / 10))
    ticks = list(range(0, len(days), every))
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{days[i].day} {days[i]:%b}" for i in ticks])
    ax.set_xlim(-0.5, len(days) - 0.5)


def distribution_png(digest: Digest) -> bytes:
    """Histogram of first-response times on a log scale, with the period's p50 and p90 marked."""
    title = "First response times"
    seconds = np.array([s for s in digest.first_response_seconds if s >= 0], dtype=float)
    if seconds.size == 0:
        return _no_data(title)
    seconds = np.maximum(seconds, 1.0)
    lo, hi = float(seconds.min()), float(seconds.max())
    hi = max(hi, lo * 2)
    fig = _figure()
    ax = fig.add_subplot()
    ax.hist(seconds, bins=list(np.geomspace(lo, hi, 30)), color=P50_COLOUR, alpha=0.6)
    ax.set_xscale("log")
    ticks: list[float] = [t for t in _LOG_TICKS if lo / 1.5 <= t <= hi * 1.5] or [lo, hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: short_duration(v)))
    ax.xaxis.set_minor_locator(FixedLocator([]))
    for value, label, colour in (
        (digest.total.p50_s, "p50", P50_COLOUR),
        (digest.total.p90_s, "p90", P90_COLOUR),
    ):
        if value is not None and value > 0:
            ax.axvline(
                value, color=colour, linestyle="--", label=f"{label} {short_duration(value)}"
            )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right")
    ax.set_title(title)
    ax.set_xlabel("time to first public reply")
    ax.set_ylabel("cases")
    return _png(fig)


def trend_png(digest: Digest) -> bytes:
    """Daily p50 and p90 first response, with SLA attainment on a second axis."""
    title = "First response by day"
    p50 = _values([t.p50_s for t in digest.trend])
    p90 = _values([t.p90_s for t in digest.trend])
    sla = _values([t.sla_attainment for t in digest.trend]) * 100
    if not digest.trend or all(np.isnan(a).all() for a in (p50, p90, sla)):
        return _no_data(title)
    x = np.arange(len(digest.trend))
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(x, p50, marker="o", color=P50_COLOUR, label="p50")
    ax.plot(x, p90, marker="o", color=P90_COLOUR, label="p90")
    top = np.nanmax(np.concatenate([p50, p90])) if not np.isnan(p90).all() else 1.0
    _duration_axis(ax, float(np.nan_to_num(top, nan=1.0)))
    _day_axis(ax, [t.day for t in digest.trend])
    ax.set_ylabel("first response")
    right = ax.twinx()
    right.plot(x, sla, linestyle="--", marker="s", color=SLA_COLOUR, label="SLA attainment")
    right.set_ylim(0, 105)
    right.yaxis.set_major_formatter(PercentFormatter(100))
    right.set_ylabel("within SLA")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small")
    ax.set_title(title)
    return _png(fig)


def sla_trend_png(digest: Digest) -> bytes:
    """Daily SLA attainment as bars, each labelled with the day's number of cases."""
    title = "Within SLA by day"
    sla = _values([t.sla_attainment for t in digest.trend]) * 100
    if not digest.trend or np.isnan(sla).all():
        return _no_data(title)
    x = np.arange(len(digest.trend))
    fig = _figure()
    ax = fig.add_subplot()
    bars = ax.bar(x, np.nan_to_num(sla), color=SLA_COLOUR, alpha=0.8)
    ax.bar_label(bars, labels=[f"{t.cases}" for t in digest.trend], fontsize="x-small")
    ax.set_ylim(0, 110)
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    _day_axis(ax, [t.day for t in digest.trend])
    ax.set_ylabel("within SLA (label: cases)")
    ax.set_title(title)
    return _png(fig)


def volume_png(digest: Digest) -> bytes:
    """Customer posts against active agents for each hour of the day."""
    title = f"Posts and agents by hour ({digest.tz})"
    posts, agents = [0] * 24, [0] * 24
    for row in digest.volume_by_hour:
        if 0 <= row.hour < 24:
            posts[row.hour] += row.posts
            agents[row.hour] = max(agents[row.hour], row.agents)
    if not any(posts) and not any(agents):
        return _no_data(title)
    hours = np.arange(24)
    fig = _figure()
    ax = fig.add_subplot()
    ax.bar(hours, posts, color=P50_COLOUR, alpha=0.7, label="customer posts")
    ax.set_xticks(range(0, 24, 3), [f"{h:02d}:00" for h in range(0, 24, 3)])
    ax.set_xlim(-0.5, 23.5)
    ax.set_ylabel("posts")
    right = ax.twinx()
    right.step(hours, agents, where="mid", color=P90_COLOUR, label="agents")
    right.set_ylim(0, max(agents) * 1.2 + 1)
    right.set_ylabel("agents")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small")
    ax.set_title(title)
    return _png(fig)


ChartFn = Callable[[Digest], bytes]
CHARTS: dict[str, ChartFn] = {
    "distribution": distribution_png,
    "trend": trend_png,
    "sla_trend": sla_trend_png,
    "volume": volume_png,
}


def render_charts(digest: Digest) -> dict[str, bytes]:
    """Every digest chart by name ('distribution', 'trend', 'sla_trend', 'volume')."""
    return {name: draw(digest) for name, draw in CHARTS.items()}
