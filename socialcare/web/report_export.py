"""A report as CSV rows (one per group) and as a JSON document with a pydantic schema."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime

from pydantic import BaseModel, Field

from socialcare.metrics.digest_format import safe_url, zone
from socialcare.metrics.digest_model import Figures, GroupFigures, SurgeFigures
from socialcare.metrics.spreadsheet import neutralise
from socialcare.web.report_query import Report

CSV_COLUMNS = (
    "group",
    "kind",
    "period_start",
    "period_end",
    "cases",
    "answered",
    "unanswered",
    "p50_s",
    "p90_s",
    "p95_s",
    "mean_s",
    "sla_attainment",
    "detection_p50_s",
    "waiting_p50_s",
    "handling_p50_s",
    "previous_p50_s",
    "previous_p90_s",
    "previous_sla_attainment",
    # Surge rows only (kind "surge": the group is its title, `cases` its cluster's cases and
    # `sla_attainment` the share of them answered within SLA): blank on every other row.
    "started_at",
    "detected_at",
    "time_to_detect_s",
    "posts",
    "time_to_first_answer_s",
)


class FiguresOut(BaseModel):
    """One group's first-response figures; seconds, null where there is no data."""

    cases: int
    answered: int
    unanswered: int
    p50_s: float | None
    p90_s: float | None
    p95_s: float | None
    mean_s: float | None
    sla_attainment: float | None = Field(description="0..1; unanswered past SLA are misses")
    detection_p50_s: float | None
    waiting_p50_s: float | None
    handling_p50_s: float | None


class GroupOut(BaseModel):
    """A team's or a priority's figures, with the previous period's."""

    name: str
    current: FiguresOut
    previous: FiguresOut | None


class WorstWaitOut(BaseModel):
    """One of the longest waits; url only when it is http(s)."""

    handle: str
    url: str | None
    waited_s: float
    answered: bool
    followers: int


class TrendOut(BaseModel):
    """One local day's figures."""

    day: date
    p50_s: float | None
    p90_s: float | None
    sla_attainment: float | None
    cases: int


class HourOut(BaseModel):
    """Customer posts and active agents in one local hour of the day."""

    hour: int
    posts: int
    agents: int


class ReportSurgeOut(BaseModel):
    """One surge incident that started in the period, with its figures as of the report."""

    title: str
    topic: str
    status: str = Field(description="as it stands now")
    started_at: datetime = Field(description="the first post of the burst, report's time zone")
    detected_at: datetime = Field(description="when the surge was opened")
    time_to_detect_s: float
    posts: int
    cases: int = Field(description="cases linked to the surge or holding its posts")
    answered: int
    time_to_first_answer_s: float | None = Field(
        description="to the brand's first public reply in its cases' threads; null: none yet"
    )
    within_sla: int
    missed_sla: int = Field(description="answered late, or still waiting past the SLA")
    sla_attainment: float | None = Field(
        description="within / (within + missed): cases still within their SLA are not judged"
    )


class ReportOut(BaseModel):
    """The reports page's figures: the same digest the page, the CSV and the charts show."""

    brand: str
    account: str | None
    period: str
    tz: str
    start: datetime = Field(description="inclusive, in the report's time zone")
    end: datetime = Field(description="exclusive, in the report's time zone")
    first_day: date
    last_day: date
    total: FiguresOut = Field(description="first response per case")
    previous: FiguresOut | None
    next_reply: FiguresOut | None = Field(
        None, description="next reply per customer post (`cases` counts posts)"
    )
    next_reply_previous: FiguresOut | None = None
    by_team: list[GroupOut]
    by_priority: list[GroupOut]
    business_hours: FiguresOut | None
    off_hours: FiguresOut | None
    exposure_followers: int = Field(description="followers of authors left waiting past SLA")
    exposure_engagement: int = Field(description="interactions on the posts left waiting past SLA")
    worst_waits: list[WorstWaitOut]
    trend: list[TrendOut]
    volume_by_hour: list[HourOut]
    by_language: list[GroupOut] = Field(
        [], description="first response per case by the language of its first post"
    )
    surges: list[ReportSurgeOut] = Field([], description="surges that started in the period")
    previous_end: date | None = Field(description="end parameter of the previous period")
    next_end: date | None = Field(description="end parameter of the next period, when over")


def _figures(f: Figures | None) -> FiguresOut | None:
    return None if f is None else FiguresOut.model_validate(f, from_attributes=True)


def _group(g: GroupFigures) -> GroupOut:
    current = FiguresOut.model_validate(g.current, from_attributes=True)
    return GroupOut(name=g.name, current=current, previous=_figures(g.previous))


def _surge(s: SurgeFigures, tz: str) -> ReportSurgeOut:
    local = zone(tz)
    return ReportSurgeOut(
        title=s.title,
        topic=s.topic,
        status=s.status,
        started_at=s.started_at.astimezone(local),
        detected_at=s.detected_at.astimezone(local),
        time_to_detect_s=s.detect_s,
        posts=s.posts,
        cases=s.cases,
        answered=s.answered,
        time_to_first_answer_s=s.first_answer_s,
        within_sla=s.within_sla,
        missed_sla=s.missed_sla,
        sla_attainment=s.sla_attainment,
    )


def report_json(report: Report) -> ReportOut:
    """The report as its JSON model; instants in the report's time zone."""
    d, q = report.digest, report.query
    local = zone(d.tz)
    return ReportOut(
        brand=d.brand,
        account=q.account,
        period=d.period,
        tz=d.tz,
        start=d.start.astimezone(local),
        end=d.end.astimezone(local),
        first_day=q.first_day,
        last_day=q.last_day,
        total=FiguresOut.model_validate(d.total, from_attributes=True),
        previous=_figures(d.previous),
        next_reply=_figures(d.next_reply),
        next_reply_previous=_figures(d.next_reply_previous),
        by_team=[_group(g) for g in d.by_team],
        by_priority=[_group(g) for g in d.by_priority],
        business_hours=_figures(d.business_hours),
        off_hours=_figures(d.off_hours),
        exposure_followers=d.exposure_followers,
        exposure_engagement=d.exposure_engagement,
        worst_waits=[
            WorstWaitOut(
                handle=w.handle,
                url=safe_url(w.url),
                waited_s=w.waited_s,
                answered=w.answered,
                followers=w.followers,
            )
            for w in d.worst_waits
        ],
        trend=[TrendOut.model_validate(t, from_attributes=True) for t in d.trend],
        volume_by_hour=[HourOut.model_validate(h, from_attributes=True) for h in d.volume_by_hour],
        by_language=[_group(g) for g in d.by_language],
        surges=[_surge(s, d.tz) for s in d.surges],
        previous_end=q.previous_end,
        next_end=q.next_end,
    )


def _num(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return str(round(value, digits))


def _row(
    name: str, kind: str, start: str, end: str, cur: Figures, prev: Figures | None
) -> list[str]:
    return [
        neutralise(name),
        kind,
        start,
        end,
        _num(cur.cases),
        _num(cur.answered),
        _num(cur.unanswered),
        _num(cur.p50_s),
        _num(cur.p90_s),
        _num(cur.p95_s),
        _num(cur.mean_s),
        _num(cur.sla_attainment, 4),
        _num(cur.detection_p50_s),
        _num(cur.waiting_p50_s),
        _num(cur.handling_p50_s),
        _num(None if prev is None else prev.p50_s),
        _num(None if prev is None else prev.p90_s),
        _num(None if prev is None else prev.sla_attainment, 4),
        *[""] * _SURGE_ONLY,
    ]


_SURGE_ONLY = 5  # the last columns, blank but on surge rows


def _surge_row(s: SurgeFigures, start: str, end: str, tz: str) -> list[str]:
    local = zone(tz)
    row = dict.fromkeys(CSV_COLUMNS, "")
    row.update(
        group=neutralise(s.title),
        kind="surge",
        period_start=start,
        period_end=end,
        cases=_num(s.cases),
        answered=_num(s.answered),
        unanswered=_num(s.cases - s.answered),
        sla_attainment=_num(s.sla_attainment, 4),
        started_at=s.started_at.astimezone(local).isoformat(),
        detected_at=s.detected_at.astimezone(local).isoformat(),
        time_to_detect_s=_num(s.detect_s),
        posts=_num(s.posts),
        time_to_first_answer_s=_num(s.first_answer_s),
    )
    return [row[column] for column in CSV_COLUMNS]


def report_csv(report: Report) -> str:
    """One row for the total, one for every customer post (kind "post", next reply: its cases
    column counts posts), then one per team, per priority and per language (of a case's first
    post), then one per surge (kind "surge", with the surge columns); instants in ISO 8601."""
    d = report.digest
    local = zone(d.tz)
    start, end = d.start.astimezone(local).isoformat(), d.end.astimezone(local).isoformat()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow(_row("total", "total", start, end, d.total, d.previous))
    if d.next_reply is not None:  # every customer post; its `cases` column counts posts
        writer.writerow(
            _row("every customer post", "post", start, end, d.next_reply, d.next_reply_previous)
        )
    for kind, groups in (
        ("team", d.by_team),
        ("priority", d.by_priority),
        ("language", d.by_language),
    ):
        for g in groups:
            writer.writerow(_row(g.name, kind, start, end, g.current, g.previous))
    for surge in d.surges:
        writer.writerow(_surge_row(surge, start, end, d.tz))
    return out.getvalue()


def csv_filename(report: Report) -> str:
    """'report-day-2025-03-03-acme.csv': only letters, digits, dots, dashes and underscores."""
    q = report.query
    parts = ["report", q.period, q.first_day.isoformat()]
    if q.account:
        parts.append(re.sub(r"[^A-Za-z0-9_.-]+", "_", q.account)[:40].strip("._") or "account")
    return "-".join(parts) + ".csv"
