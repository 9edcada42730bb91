"""A digest as plain text, as an HTML email body and as a Slack Block Kit message (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from socialcare.metrics.digest_format import (
    clean,
    duration_change,
    format_count,
    format_duration,
    percent_change,
    period_label,
    safe_url,
    title,
)
from socialcare.metrics.digest_model import (
    AckAccuracy,
    Digest,
    Figures,
    GroupFigures,
    Recovery,
    WorstWait,
)
from socialcare.metrics.digest_sections import (
    LANGUAGE_HEADING,
    LANGUAGE_NOTE,
    SURGE_HEADING,
    language_rows,
    slack_blocks,
    surge_rows,
    text_lines,
)

CHART_TITLES = {
    "distribution": "First response times",
    "trend": "First response by day",
    "sla_trend": "Within SLA by day",
    "volume": "Posts and agents by hour",
}
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_NAME_WIDTH = 24


@dataclass(frozen=True)
class Headline:
    """The period's key figures as text, each with its change against the previous period."""

    cases: str
    answered: str
    unanswered: str
    p50: str
    p90: str
    p95: str
    mean: str
    sla: str
    split: str  # where the time went: detection, waiting, handling medians


def headline(current: Figures, previous: Figures | None) -> Headline:
    """Text for one group's figures, compared with the previous period where there is one."""

    def was(name: str) -> Any:
        return None if previous is None else getattr(previous, name)

    return Headline(
        cases=format_count(current.cases),
        answered=format_count(current.answered),
        unanswered=format_count(current.unanswered),
        p50=duration_change(current.p50_s, was("p50_s")),
        p90=duration_change(current.p90_s, was("p90_s")),
        p95=duration_change(current.p95_s, was("p95_s")),
        mean=duration_change(current.mean_s, was("mean_s")),
        sla=percent_change(current.sla_attainment, was("sla_attainment")),
        split=(
            f"detection {format_duration(current.detection_p50_s)}"
            f" · waiting {format_duration(current.waiting_p50_s)}"
            f" · handling {format_duration(current.handling_p50_s)}"
        ),
    )


def _group_row(group: GroupFigures) -> dict[str, str]:
    h = headline(group.current, group.previous)
    return {
        "name": clean(group.name),
        "cases": h.cases,
        "unanswered": h.unanswered,
        "p50": h.p50,
        "p90": h.p90,
        "sla": h.sla,
    }


def _wait_text(wait: WorstWait) -> str:
    state = "answered" if wait.answered else "still unanswered"
    return f"{format_duration(wait.waited_s)} ({state}) · {format_count(wait.followers)} followers"


def _hours_rows(digest: Digest) -> list[dict[str, str]]:
    rows = []
    for label, figures in (
        ("Business hours", digest.business_hours),
        ("Off hours", digest.off_hours),
    ):
        if figures is not None:
            rows.append({"name": label, **_group_row(GroupFigures(label, figures, None))})
    return rows


def _context(digest: Digest) -> dict[str, Any]:
    return {
        "title": title(digest),
        "brand": clean(digest.brand),
        "period": period_label(digest),
        "tz": digest.tz,
        "head": headline(digest.total, digest.previous),
        "has_previous": digest.previous is not None,
        "exposure": format_count(digest.exposure_followers),
        "exposure_engagement": format_count(digest.exposure_engagement),
        "teams": [_group_row(g) for g in digest.by_team],
        "priorities": [_group_row(g) for g in digest.by_priority],
        "hours": _hours_rows(digest),
        "waits": [
            {"handle": clean(w.handle), "url": safe_url(w.url), "text": _wait_text(w)}
            for w in digest.worst_waits
        ],
        "report_url": safe_url(digest.report_url),
        "ack": None if digest.acknowledgements is None else ack_summary(digest.acknowledgements),
        "recovery": recovery_tables(digest),
        "next_reply": (
            None
            if digest.next_reply is None
            else headline(digest.next_reply, digest.next_reply_previous)
        ),
        "surge_heading": SURGE_HEADING,
        "surges": surge_rows(digest),
        "language_heading": LANGUAGE_HEADING,
        "language_note": LANGUAGE_NOTE,
        "languages": language_rows(digest),
    }


def ack_summary(a: AckAccuracy) -> str:
    """How the waits told to customers held up."""
    line = f"Waits told in acknowledgements: {format_count(a.told)} cases"
    line += f", {format_count(a.answered)} answered since"
    if a.mean_abs_error_s is not None and a.mean_error_s is not None:
        side = "sooner" if a.mean_error_s >= 0 else "later"
        line += (
            f"; off by {format_duration(a.mean_abs_error_s)} on average"
            f" (answers came {format_duration(abs(a.mean_error_s))} {side} than told)"
        )
    return line


def recovery_tables(digest: Digest) -> list[tuple[str, list[dict[str, str]]]]:
    """(heading, rows) of sentiment recovery by team and by agent, those with data."""
    return [
        (heading, [recovery_row(r) for r in rows])
        for heading, rows in (
            ("by team", digest.recovery_by_team),
            ("by agent", digest.recovery_by_agent),
        )
        if rows
    ]


def recovery_row(r: Recovery) -> dict[str, str]:
    return {
        "name": clean(r.name),
        "cases": format_count(r.cases),
        "before": f"{r.before:+.2f}",
        "after": f"{r.after:+.2f}",
        "change": f"{r.change:+.2f}",
    }


def _text_table(rows: list[dict[str, str]]) -> list[str]:
    out = []
    for row in rows:
        name = row["name"]
        if len(name) > _NAME_WIDTH:
            name = name[: _NAME_WIDTH - 1] + "…"
        out.append(
            f"  {name:<{_NAME_WIDTH}} cases {row['cases']:>6}  unanswered {row['unanswered']:>5}"
            f"  p50 {row['p50']}  p90 {row['p90']}  SLA {row['sla']}"
        )
    return out


def render_text(digest: Digest) -> str:
    """The plain-text part of the digest email (also what the stdout notifier prints)."""
    c = _context(digest)
    h: Headline = c["head"]
    lines = [
        c["title"],
        f"{c['period']} ({c['tz']})",
        "",
        "First response per case",
        f"Cases {h.cases} · answered {h.answered} · unanswered {h.unanswered}",
        f"p50 {h.p50}",
        f"p90 {h.p90}",
        f"p95 {h.p95}",
        f"mean {h.mean}",
        f"SLA attainment {h.sla} (unanswered past SLA count as misses)",
        f"Median split: {h.split}",
        f"Followers who saw a post wait past SLA unanswered: {c['exposure']}",
        f"Interactions on those posts while they waited: {c['exposure_engagement']}",
    ]
    if not c["has_previous"]:
        lines.append("No previous period to compare with.")
    n: Headline | None = c["next_reply"]
    if n is not None:
        lines += [
            "",
            "Next reply per customer post (every post's wait for the brand's next reply)",
            f"Posts {n.cases} · answered {n.answered} · unanswered {n.unanswered}",
            f"p50 {n.p50}",
            f"p90 {n.p90}",
            f"p95 {n.p95}",
            f"mean {n.mean}",
            f"Next-reply SLA attainment {n.sla} (posts still waiting past it count as misses)",
        ]
    for heading, rows in (
        ("By team", c["teams"]),
        ("By priority", c["priorities"]),
        ("Business hours and off hours", c["hours"]),
    ):
        if rows:
            lines += ["", heading, *_text_table(rows)]
    lines += text_lines(digest)
    if c["waits"]:
        lines += ["", "Longest waits"]
        for i, wait in enumerate(c["waits"], 1):
            link = f" {wait['url']}" if wait["url"] else ""
            lines.append(f"  {i}. @{wait['handle']} waited {wait['text']}{link}")
    if digest.acknowledgements is not None:
        lines += ["", ack_summary(digest.acknowledgements)]
    for heading, rows in c["recovery"]:
        lines += ["", f"Customer sentiment before and after the first response, {heading}"]
        lines += [
            f"  {row['name']:<{_NAME_WIDTH}} cases {row['cases']:>6}  before {row['before']}"
            f"  after {row['after']}  change {row['change']}"
            for row in rows
        ]
    if c["report_url"]:
        lines += ["", f"Full report: {c['report_url']}"]
    return "\n".join(lines) + "\n"


def render_html(digest: Digest, *, chart_cids: dict[str, str]) -> str:
    """The HTML part: every untrusted string escaped, charts as cid: images, nothing external."""
    charts = [
        {"cid": chart_cids[name], "alt": alt}
        for name, alt in CHART_TITLES.items()
        if name in chart_cids
    ]
    return _TEMPLATES.get_template("digest_email.html").render(**_context(digest), charts=charts)


def _mrkdwn(text: str) -> str:
    """Slack's escaping: only &, < and > are control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str | None, text: str) -> str:
    safe = safe_url(url)
    if safe is None:
        return _mrkdwn(text)
    return f"<{_mrkdwn(safe).replace('|', '%7C')}|{_mrkdwn(text)}>"


def _text_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _list_section(title: str, lines: list[str]) -> dict[str, Any]:
    """A titled section of bullet lines (mrkdwn already made safe by the caller)."""
    return _text_section(f"*{title}*\n" + "\n".join(lines))


def _figure_fields(h: Headline, *, what: str, sla: str, counted: str) -> list[dict[str, str]]:
    return [
        {"type": "mrkdwn", "text": f"*p50 {what}*\n{h.p50}"},
        {"type": "mrkdwn", "text": f"*p90 {what}*\n{h.p90}"},
        {"type": "mrkdwn", "text": f"*{sla}*\n{h.sla}"},
        {
            "type": "mrkdwn",
            "text": f"*{counted}*\n{h.cases} · answered {h.answered} · unanswered {h.unanswered}",
        },
    ]


def slack_payload(digest: Digest, *, chart_url: str | None) -> dict[str, Any]:
    """A Slack incoming-webhook message in Block Kit, with a plain-text fallback."""
    c = _context(digest)
    h: Headline = c["head"]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": c["title"][:150]}},
        {
            **_text_section(f"*{c['period']}* ({_mrkdwn(c['tz'])})"),
            "fields": _figure_fields(h, what="first response", sla="Within SLA", counted="Cases"),
        },
    ]
    n: Headline | None = c["next_reply"]
    if n is not None:
        fields = _figure_fields(
            n,
            what="next reply per post",
            sla="Posts within next-reply SLA",
            counted="Customer posts",
        )
        blocks.append({"type": "section", "fields": fields})
    team_lines = [
        f"• {_mrkdwn(row['name'])}: p90 {row['p90']} · SLA {row['sla']}"
        f" · unanswered {row['unanswered']}"
        for row in c["teams"][:10]
    ]
    if team_lines:
        blocks.append(_list_section("By team", team_lines))
    blocks += slack_blocks(digest)
    if digest.worst_waits:
        wait_lines = [
            f"• {_slack_link(w.url, '@' + clean(w.handle))} waited {_mrkdwn(_wait_text(w))}"
            for w in digest.worst_waits[:10]
        ]
        blocks.append(_list_section("Longest waits", wait_lines))
    chart = safe_url(chart_url)
    if chart is not None:
        blocks.append({"type": "image", "image_url": chart, "alt_text": "First response by day"})
    if c["report_url"]:
        blocks.append(_text_section(_slack_link(c["report_url"], "Charts and full report")))
    exposure = f"Median split: {h.split} · followers exposed to waits past SLA: {c['exposure']}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": exposure}]})
    fallback = (
        f"{c['title']} ({c['period']}): p50 {h.p50}, p90 {h.p90}, SLA {h.sla},"
        f" unanswered {h.unanswered}"
    )
    return {"text": _mrkdwn(fallback), "blocks": blocks}
