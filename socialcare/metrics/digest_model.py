"""The figures a manager latency digest carries: plain data, filled in by the digest queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class Figures:
    """One group's first-response figures over a period; seconds, None where there is no data."""

    cases: int
    answered: int
    unanswered: int
    p50_s: float | None
    p90_s: float | None
    p95_s: float | None
    mean_s: float | None
    sla_attainment: float | None  # 0..1, unanswered past SLA count as misses
    detection_p50_s: float | None
    waiting_p50_s: float | None
    handling_p50_s: float | None


@dataclass(frozen=True)
class GroupFigures:
    """A team's or a priority's figures, with the previous period's for comparison."""

    name: str
    current: Figures
    previous: Figures | None


@dataclass(frozen=True)
class WorstWait:
    """One of the period's longest waits for a first response."""

    handle: str
    url: str | None
    waited_s: float
    answered: bool
    followers: int


@dataclass(frozen=True)
class TrendPoint:
    """One day's figures in the digest's time zone."""

    day: date
    p50_s: float | None
    p90_s: float | None
    sla_attainment: float | None
    cases: int


@dataclass(frozen=True)
class HourVolume:
    """Customer posts and active agents in one hour of the day (0..23, digest time zone)."""

    hour: int
    posts: int
    agents: int


@dataclass(frozen=True)
class Recovery:
    """Mean customer sentiment (p(positive) - p(negative)) before and after the first response,
    over the cases where the customer posted both before and after it."""

    name: str
    cases: int
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before


@dataclass(frozen=True)
class AckAccuracy:
    """How well the waits told to customers in acknowledgements held: over the acknowledged
    cases since answered, the mean absolute error and the mean signed error (positive: the
    answer came sooner than promised)."""

    told: int
    answered: int
    mean_abs_error_s: float | None
    mean_error_s: float | None


@dataclass(frozen=True)
class SurgeFigures:
    """One surge incident that started in a period: when, how big, how fast it was seen and
    answered, and how much of its cluster was answered within the first-response SLA."""

    surge_id: int
    title: str  # untrusted: made from the customers' own words
    topic: str
    status: str  # as it stands now (open, acknowledged, answered, resolved)
    started_at: datetime  # the first post of the burst (public time)
    detected_at: datetime  # when the surge was opened
    detect_s: float  # detected_at - started_at
    posts: int
    cases: int
    answered: int  # cases with a first response by the digest's moment
    # The brand's first public reply (not an acknowledgement) in any of its cases' threads at
    # or after the start, minus the start; None while none has come.
    first_answer_s: float | None
    within_sla: int  # cases answered within their first-response SLA
    missed_sla: int  # answered late, or still waiting past it
    # within / (within + missed), as the case figures judge (a case still waiting within its
    # SLA is not judged yet); None when none is judged.
    sla_attainment: float | None


@dataclass(frozen=True)
class Digest:
    """Everything one digest shows, for one brand over one day or week."""

    brand: str
    period: str  # "day" | "week"
    start: datetime  # aware, inclusive
    end: datetime  # aware, exclusive
    tz: str  # IANA name the digest is shown in
    total: Figures
    previous: Figures | None
    by_team: list[GroupFigures]
    by_priority: list[GroupFigures]
    business_hours: Figures | None
    off_hours: Figures | None
    exposure_followers: int  # followers of authors whose posts waited unanswered past SLA
    worst_waits: list[WorstWait]
    first_response_seconds: list[float]  # for the distribution chart
    trend: list[TrendPoint]
    volume_by_hour: list[HourVolume]
    report_url: str | None  # link to the web reports page
    # Did the answer help: customer sentiment after the first response against before it.
    recovery_by_team: list[Recovery] = field(default_factory=list)
    recovery_by_agent: list[Recovery] = field(default_factory=list)
    acknowledgements: AckAccuracy | None = None  # None: no acknowledgement in the period
    # Likes, reposts (twice), replies and quotes on the posts of the cases past their SLA.
    exposure_engagement: int = 0
    # Next reply per customer post (every post, not only a case's first; `cases` counts posts),
    # against the next-reply SLA; None where not computed.
    next_reply: Figures | None = None
    next_reply_previous: Figures | None = None
    # First response per case by the language of the case's first post, most cases first.
    by_language: list[GroupFigures] = field(default_factory=list)
    # The surge incidents that started in the period, oldest first.
    surges: list[SurgeFigures] = field(default_factory=list)


def empty_figures() -> Figures:
    """Figures of a group without a single case."""
    return Figures(
        cases=0,
        answered=0,
        unanswered=0,
        p50_s=None,
        p90_s=None,
        p95_s=None,
        mean_s=None,
        sla_attainment=None,
        detection_p50_s=None,
        waiting_p50_s=None,
        handling_p50_s=None,
    )
