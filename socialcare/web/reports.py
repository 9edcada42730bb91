"""The reports page managers read, its charts as PNG, and the same figures as CSV and JSON."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.metrics.charts import CHARTS
from socialcare.metrics.digest_format import (
    MISSING,
    arrow,
    clean,
    format_count,
    format_duration,
    format_percent,
    period_label,
    safe_url,
)
from socialcare.metrics.digest_model import Figures, GroupFigures
from socialcare.metrics.digest_render import CHART_TITLES, ack_summary, recovery_tables
from socialcare.metrics.digest_sections import LANGUAGE_NOTE, language_rows, surge_rows
from socialcare.posts.models import Account
from socialcare.web.deps import SessionDep, templates
from socialcare.web.report_export import ReportOut, csv_filename, report_csv, report_json
from socialcare.web.report_query import PERIODS, BadReportQuery, Report, ReportDep, ReportQuery

router = APIRouter()
PAGE_PATH = "/reports"
# Figures for a past period still move as late answers come in: cache briefly, privately.
CHART_CACHE = "private, max-age=300"


def _signed(n: int) -> str:
    return f"{n:+,d}" if n else "0"


def _tone(delta: float, lower_is_better: bool | None) -> str:
    if delta == 0 or lower_is_better is None:  # None: a change that is neither good nor bad
        return ""
    return "better" if (delta < 0) == lower_is_better else "worse"


def _line(
    label: str, kind: str, cur: Any, prev: Any, lower_is_better: bool | None
) -> dict[str, str]:
    """One headline row: the value, the previous period's, and the change between them."""
    fmt = {"count": format_count, "duration": format_duration, "percent": format_percent}[kind]
    row = {"label": label, "current": fmt(cur), "previous": MISSING, "change": "", "tone": ""}
    if prev is None:
        return row
    row["previous"] = fmt(prev)
    if cur is None:
        return row
    delta = cur - prev
    if kind == "count":
        shown, unit = delta, ""
    elif kind == "percent":
        shown, unit = round(delta * 100), " pts"
    elif prev > 0:
        shown, unit = round(delta / prev * 100), "%"
    else:
        shown, unit = (delta > 0) - (delta < 0), None  # no ratio to a zero: the direction only
    row["change"] = arrow(shown) if unit is None else f"{arrow(shown)} {_signed(shown)}{unit}"
    row["tone"] = _tone(shown, lower_is_better)
    return row


def headline_rows(cur: Figures, prev: Figures | None, unit: str = "case") -> list[dict[str, str]]:
    """The headline table: every figure beside the previous period's, with the change. unit
    "case": first response per case; "post": next reply per customer post."""

    def was(name: str) -> Any:
        return None if prev is None else getattr(prev, name)

    what, wait, sla = (
        ("Cases", "first response", "Within SLA")
        if unit == "case"
        else ("Customer posts", "next reply", "Within next-reply SLA")
    )
    lines = [
        (what, "count", "cases", None),
        ("Answered", "count", "answered", None),
        ("Unanswered", "count", "unanswered", True),
        (f"p50 {wait}", "duration", "p50_s", True),
        (f"p90 {wait}", "duration", "p90_s", True),
        (f"p95 {wait}", "duration", "p95_s", True),
        (f"Mean {wait}", "duration", "mean_s", True),
        (sla, "percent", "sla_attainment", False),
    ]
    return [_line(label, kind, getattr(cur, n), was(n), low) for label, kind, n, low in lines]


def split_rows(cur: Figures, prev: Figures | None) -> list[dict[str, str]]:
    """Where the time went: detection, waiting and handling medians, against last period's."""
    return [
        _line(label, "duration", getattr(cur, n), None if prev is None else getattr(prev, n), True)
        for label, n in (
            ("Detection (median)", "detection_p50_s"),
            ("Waiting in the queue (median)", "waiting_p50_s"),
            ("Handling (median)", "handling_p50_s"),
        )
    ]


def group_rows(groups: list[GroupFigures]) -> list[dict[str, str]]:
    """A team or priority table: current figures beside the previous period's."""
    rows = []
    for g in groups:
        cur, prev = g.current, g.previous
        rows.append(
            {
                "name": clean(g.name),
                "cases": format_count(cur.cases),
                "unanswered": format_count(cur.unanswered),
                "p50": format_duration(cur.p50_s),
                "p90": format_duration(cur.p90_s),
                "sla": format_percent(cur.sla_attainment),
                "prev_cases": MISSING if prev is None else format_count(prev.cases),
                "prev_p50": MISSING if prev is None else format_duration(prev.p50_s),
                "prev_p90": MISSING if prev is None else format_duration(prev.p90_s),
                "prev_sla": MISSING if prev is None else format_percent(prev.sla_attainment),
            }
        )
    return rows


def account_choices(session: Session) -> list[str]:
    """Every account as the account parameter names it: the handle, or platform:handle where
    the same handle is on several platforms."""
    pairs = list(session.execute(select(Account.platform, Account.handle).order_by(Account.handle)))
    seen = Counter(handle.lower() for _platform, handle in pairs)
    return [h if seen[h.lower()] == 1 else f"{p}:{h}" for p, h in pairs]


def _page_href(q: ReportQuery, end: date | None) -> str | None:
    return None if end is None else f"{PAGE_PATH}?{q.query_string(end=end)}"


def page_context(report: Report, session: Session) -> dict[str, Any]:
    """Everything reports.html shows; untrusted strings stay plain (the template escapes)."""
    d, q = report.digest, report.query
    qs = q.query_string()
    hours = [
        GroupFigures(label, figures, None)
        for label, figures in (("Business hours", d.business_hours), ("Off hours", d.off_hours))
        if figures is not None
    ]
    return {
        "q": q,
        "brand": clean(d.brand),
        "period_label": period_label(d),
        "kind": "Daily" if d.period == "day" else "Weekly",
        "head": headline_rows(d.total, d.previous),
        "posts_head": (
            None
            if d.next_reply is None
            else headline_rows(d.next_reply, d.next_reply_previous, unit="post")
        ),
        "split": split_rows(d.total, d.previous),
        "has_previous": d.previous is not None,
        "teams": group_rows(d.by_team),
        "priorities": group_rows(d.by_priority),
        "hours": group_rows(hours),
        "languages": language_rows(d),
        "language_note": LANGUAGE_NOTE,
        "surges": surge_rows(d),
        "exposure": format_count(d.exposure_followers),
        "exposure_engagement": format_count(d.exposure_engagement),
        "waits": [
            {
                "handle": clean(w.handle),
                "url": safe_url(w.url),
                "waited": format_duration(w.waited_s),
                "state": "answered" if w.answered else "still unanswered",
                "followers": format_count(w.followers),
            }
            for w in d.worst_waits
        ],
        "recovery": recovery_tables(d),
        "ack": None if d.acknowledgements is None else ack_summary(d.acknowledgements),
        "charts": [
            {"src": f"{PAGE_PATH}/chart/{name}.png?{qs}", "alt": CHART_TITLES.get(name, name)}
            for name in CHARTS
        ],
        "csv_href": f"{PAGE_PATH}.csv?{qs}",
        "json_href": f"/api{PAGE_PATH}?{qs}",
        "previous_href": _page_href(q, q.previous_end),
        "next_href": _page_href(q, q.next_end),
        "periods": PERIODS,
        "accounts": account_choices(session),
    }


def bad_query_response(request: Request, exc: Exception) -> Response:
    """400 for a query the reports cannot use: a page for the page, JSON for the rest."""
    message = str(exc)
    if request.url.path == PAGE_PATH:
        return templates.TemplateResponse(
            request, "bad_request.html", {"message": message, "back": PAGE_PATH}, status_code=400
        )
    return JSONResponse({"detail": message}, status_code=400)


@router.get(PAGE_PATH, response_class=HTMLResponse, include_in_schema=False)
def reports_page(request: Request, session: SessionDep, report: ReportDep) -> Response:
    """The digest's figures for one period, with its charts and links to the next and last."""
    return templates.TemplateResponse(request, "reports.html", page_context(report, session))


@router.get(f"{PAGE_PATH}.csv", include_in_schema=False)
def reports_csv(report: ReportDep) -> Response:
    """One row per group (total, teams, priorities) as a CSV download."""
    return Response(
        report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{csv_filename(report)}"'},
    )


def chart_name(name: str) -> str:
    """A known chart's name, or 404 before any figures are computed."""
    if name not in CHARTS:
        raise HTTPException(404, f"no chart {name[:40]!r}; charts: {', '.join(CHARTS)}")
    return name


@router.get(
    f"{PAGE_PATH}/chart/{{name}}.png",
    response_class=Response,
    include_in_schema=False,
    responses={200: {"content": {"image/png": {}}}},
)
def reports_chart(name: Annotated[str, Depends(chart_name)], report: ReportDep) -> Response:
    """One of the page's charts as a PNG."""
    png = CHARTS[name](report.digest)
    return Response(png, media_type="image/png", headers={"Cache-Control": CHART_CACHE})


@router.get(
    f"/api{PAGE_PATH}",
    response_model=ReportOut,
    responses={400: {"description": "a period or filter that cannot be"}},
)
def reports_api(report: ReportDep) -> ReportOut:
    """The page's figures as JSON."""
    return report_json(report)


__all__ = ["BadReportQuery", "bad_query_response", "router"]
