"""The digest's surge and language sections as rows of text, for the email (HTML and plain
text), Slack and the reports page. Surge titles and language codes are untrusted: they leave
here cleaned to one line and are escaped by whoever writes them out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from socialcare.metrics.digest_format import (
    MISSING,
    clean,
    format_count,
    format_duration,
    format_percent,
    zone,
)
from socialcare.metrics.digest_model import Digest, GroupFigures, SurgeFigures

SURGE_HEADING = "Surges"
LANGUAGE_HEADING = "First response per case by language"
LANGUAGE_NOTE = (
    "A case counts under the language of its first post; languages with a single case are "
    "shown too."
)
_SLACK_LINES = 10
_TITLE_WIDTH = 60


def local_time(moment: datetime, tz: str) -> str:
    """'Mon 3 Mar 14:05' in the digest's time zone."""
    local = moment.astimezone(zone(tz))
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def surge_sla(s: SurgeFigures) -> str:
    """'67% (2 of 3 judged)': the share answered within SLA and of how many cases."""
    judged = s.within_sla + s.missed_sla
    if not judged:
        return f"{MISSING} (none judged yet)"
    return f"{format_percent(s.sla_attainment)} ({s.within_sla} of {judged} judged)"


def surge_row(s: SurgeFigures, tz: str) -> dict[str, str]:
    """One surge as text: its title cleaned, its times local, its figures formatted."""
    return {
        "title": clean(s.title),
        "topic": clean(s.topic),
        "status": clean(s.status),
        "started": local_time(s.started_at, tz),
        "detected": local_time(s.detected_at, tz),
        "detect": format_duration(s.detect_s),
        "posts": format_count(s.posts),
        "cases": format_count(s.cases),
        "answered": format_count(s.answered),
        "first_answer": (
            "not answered yet" if s.first_answer_s is None else format_duration(s.first_answer_s)
        ),
        "sla": surge_sla(s),
    }


def surge_rows(digest: Digest) -> list[dict[str, str]]:
    """The period's surges, oldest first."""
    return [surge_row(s, digest.tz) for s in digest.surges]


def language_row(g: GroupFigures) -> dict[str, str]:
    """One language's first-response figures, with last period's p90 and SLA beside them."""
    cur, prev = g.current, g.previous
    return {
        "name": clean(g.name),
        "cases": format_count(cur.cases),
        "answered": format_count(cur.answered),
        "unanswered": format_count(cur.unanswered),
        "p50": format_duration(cur.p50_s),
        "p90": format_duration(cur.p90_s),
        "p95": format_duration(cur.p95_s),
        "sla": format_percent(cur.sla_attainment),
        "prev_cases": MISSING if prev is None else format_count(prev.cases),
        "prev_p90": MISSING if prev is None else format_duration(prev.p90_s),
        "prev_sla": MISSING if prev is None else format_percent(prev.sla_attainment),
    }


def language_rows(digest: Digest) -> list[dict[str, str]]:
    """Every language of the period's cases, most cases first."""
    return [language_row(g) for g in digest.by_language]


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def surge_line(row: dict[str, str]) -> str:
    """A surge in one line of plain text."""
    return (
        f"{_short(row['title'], _TITLE_WIDTH)} ({row['topic']}): started {row['started']},"
        f" detected after {row['detect']} · {row['posts']} posts, {row['cases']} cases"
        f" · first answer {row['first_answer']} · within SLA {row['sla']}"
    )


def text_lines(digest: Digest) -> list[str]:
    """The plain-text sections: surges (or a line saying there were none) and languages."""
    surges = surge_rows(digest)
    lines = ["", SURGE_HEADING]
    if surges:
        lines += [f"  {i}. {surge_line(row)}" for i, row in enumerate(surges, 1)]
    else:
        lines.append("  No surge started in this period.")
    languages = language_rows(digest)
    if languages:
        lines += ["", LANGUAGE_HEADING]
        width = max(len(row["name"]) for row in languages)
        lines += [
            f"  {row['name']:<{width}} cases {row['cases']:>6}  unanswered {row['unanswered']:>5}"
            f"  p50 {row['p50']}  p90 {row['p90']}  p95 {row['p95']}  SLA {row['sla']}"
            f"  (before: p90 {row['prev_p90']}, SLA {row['prev_sla']})"
            for row in languages
        ]
    return lines


def _mrkdwn(text: str) -> str:
    """Slack's escaping: only &, < and > are control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _more(shown: int, total: int) -> list[str]:
    return [f"… and {total - shown} more in the full report"] if total > shown else []


def slack_blocks(digest: Digest) -> list[dict[str, Any]]:
    """Slack sections for surges (when there were any) and languages, at most ten lines each."""
    blocks: list[dict[str, Any]] = []
    surges = surge_rows(digest)
    if surges:
        lines = [f"• {_mrkdwn(surge_line(row))}" for row in surges[:_SLACK_LINES]]
        lines += _more(len(lines), len(surges))
        blocks.append(_section(f"*{SURGE_HEADING}*\n" + "\n".join(lines)))
    languages = language_rows(digest)
    if languages:
        lines = [
            f"• {_mrkdwn(row['name'])}: {row['cases']} cases · p50 {row['p50']}"
            f" · p90 {row['p90']} · SLA {row['sla']}"
            for row in languages[:_SLACK_LINES]
        ]
        lines += _more(len(lines), len(languages))
        blocks.append(_section(f"*{LANGUAGE_HEADING}*\n" + "\n".join(lines)))
    return blocks


def _section(text: str) -> dict[str, Any]:
    # A section's text is at most 3000 characters in Block Kit.
    return {"type": "section", "text": {"type": "mrkdwn", "text": _short(text, 3000)}}
