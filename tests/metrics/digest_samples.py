"""Digests built from hand-made numbers, shared by the digest tests."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import matplotlib.image

from socialcare.metrics.digest_model import (
    Digest,
    Figures,
    GroupFigures,
    HourVolume,
    TrendPoint,
    WorstWait,
    empty_figures,
)

HOSTILE = "<script>alert(1)</script>"
WEEK_START = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)


def figures(
    *,
    cases: int,
    unanswered: int,
    p50_s: float | None,
    p90_s: float | None,
    sla: float | None,
) -> Figures:
    return Figures(
        cases=cases,
        answered=cases - unanswered,
        unanswered=unanswered,
        p50_s=p50_s,
        p90_s=p90_s,
        p95_s=None if p90_s is None else p90_s * 1.5,
        mean_s=None if p50_s is None else p50_s * 1.4,
        sla_attainment=sla,
        detection_p50_s=None if p50_s is None else 30.0,
        waiting_p50_s=None if p50_s is None else p50_s - 90,
        handling_p50_s=None if p50_s is None else 60.0,
    )


def sample_digest() -> Digest:
    """A week for 'Acme': p50 4m 05s, p90 12m, SLA 92%, 7 unanswered of 120 cases."""
    total = figures(cases=120, unanswered=7, p50_s=245.0, p90_s=720.0, sla=0.92)
    previous = figures(cases=100, unanswered=9, p50_s=300.0, p90_s=1080.0, sla=0.88)
    billing = figures(cases=70, unanswered=3, p50_s=200.0, p90_s=600.0, sla=0.95)
    return Digest(
        brand="Acme",
        period="week",
        start=WEEK_START,
        end=WEEK_START + timedelta(days=7),
        tz="Europe/London",
        total=total,
        previous=previous,
        by_team=[
            GroupFigures(name="Billing & Accounts", current=billing, previous=None),
            GroupFigures(
                name=HOSTILE,
                current=figures(cases=50, unanswered=4, p50_s=330.0, p90_s=7800.0, sla=0.87),
                previous=previous,
            ),
        ],
        by_priority=[
            GroupFigures(
                name="P1",
                current=figures(cases=10, unanswered=0, p50_s=120.0, p90_s=400.0, sla=1.0),
                previous=None,
            )
        ],
        business_hours=figures(cases=90, unanswered=2, p50_s=180.0, p90_s=500.0, sla=0.96),
        off_hours=figures(cases=30, unanswered=5, p50_s=1500.0, p90_s=9000.0, sla=0.80),
        exposure_followers=12345,
        worst_waits=[
            WorstWait(
                handle=HOSTILE,
                url="https://x.com/i/status/1?a=1&b=<2>",
                waited_s=18600.0,
                answered=False,
                followers=40210,
            ),
            WorstWait(
                handle="calm_customer",
                url="javascript:alert(2)",
                waited_s=7205.0,
                answered=True,
                followers=12,
            ),
        ],
        first_response_seconds=[float(s) for s in range(20, 9000, 75)],
        trend=[
            TrendPoint(
                day=date(2025, 3, 3) + timedelta(days=i),
                p50_s=200.0 + 10 * i,
                p90_s=600.0 + 60 * i if i != 3 else None,
                sla_attainment=0.9 + 0.01 * i if i != 3 else None,
                cases=15 + i,
            )
            for i in range(7)
        ],
        volume_by_hour=[HourVolume(hour=h, posts=5 + (h % 7) * 3, agents=h % 5) for h in range(24)],
        report_url="https://care.example.com/reports/latency?brand=Acme&period=week",
    )


def empty_digest() -> Digest:
    """A day without a single case."""
    return Digest(
        brand="Quiet Co",
        period="day",
        start=WEEK_START,
        end=WEEK_START + timedelta(days=1),
        tz="UTC",
        total=empty_figures(),
        previous=None,
        by_team=[],
        by_priority=[],
        business_hours=None,
        off_hours=None,
        exposure_followers=0,
        worst_waits=[],
        first_response_seconds=[],
        trend=[],
        volume_by_hour=[],
        report_url=None,
    )


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Height and width of a PNG, decoded in full by matplotlib (fails on anything else)."""
    assert data.startswith(PNG_SIGNATURE)
    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
    return int(pixels.shape[0]), int(pixels.shape[1])
