"""Surges and languages in the digest: built from the database on both databases, and written
into the plain text, the HTML email and Slack, hostile titles and codes never becoming markup;
an empty period says there was no surge."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.metrics.digest import build_digest
from socialcare.metrics.digest_model import Digest, GroupFigures, SurgeFigures
from socialcare.metrics.digest_render import render_html, render_text, slack_payload
from socialcare.metrics.figures import Scope
from socialcare.metrics.surge_figures import surge_figures
from tests.factories import make_case, make_post
from tests.metrics.digest_samples import HOSTILE, WEEK_START, empty_digest, figures, sample_digest
from tests.metrics.surge_world import H, at, store, world

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _surge(title: str = "outage: app down", **changes: object) -> SurgeFigures:
    base = SurgeFigures(
        surge_id=1,
        title=title,
        topic="outage",
        status="resolved",
        started_at=WEEK_START + timedelta(hours=14),
        detected_at=WEEK_START + timedelta(hours=14, minutes=4),
        detect_s=240.0,
        posts=512,
        cases=480,
        answered=470,
        first_answer_s=1500.0,
        within_sla=400,
        missed_sla=80,
        sla_attainment=400 / 480,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _languages() -> list[GroupFigures]:
    ru = figures(cases=40, unanswered=6, p50_s=900.0, p90_s=7200.0, sla=0.7)
    en = figures(cases=75, unanswered=1, p50_s=200.0, p90_s=600.0, sla=0.96)
    fa = figures(cases=1, unanswered=0, p50_s=60.0, p90_s=60.0, sla=1.0)
    unknown = figures(cases=4, unanswered=0, p50_s=300.0, p90_s=900.0, sla=1.0)
    return [
        GroupFigures("en", en, None),
        GroupFigures("ru", ru, figures(cases=30, unanswered=2, p50_s=600, p90_s=3600, sla=0.8)),
        GroupFigures("unknown", unknown, None),
        GroupFigures("fa", fa, None),
    ]


def _digest() -> Digest:
    return replace(
        sample_digest(),
        surges=[
            _surge(),
            _surge(
                HOSTILE,
                surge_id=2,
                first_answer_s=None,
                within_sla=0,
                missed_sla=0,
                sla_attainment=None,
            ),
        ],
        by_language=_languages(),
    )


def test_the_text_shows_each_surge_and_each_language() -> None:
    text = render_text(_digest())
    # Europe/London in March is UTC: 14:00 on Monday 3 March.
    assert (
        "1. outage: app down (outage): started Mon 3 Mar 14:00, detected after 4m 00s"
        " · 512 posts, 480 cases · first answer 25m 00s · within SLA 83% (400 of 480 judged)"
    ) in text
    assert "first answer not answered yet · within SLA n/a (none judged yet)" in text
    assert "First response per case by language" in text
    lines = [line.split() for line in text.splitlines()]
    ru = next(line for line in lines if line[:1] == ["ru"])
    assert ru[:3] == ["ru", "cases", "40"]
    assert "p90 2h 00m" in " ".join(ru) and "(before: p90 1h 00m, SLA 80%)" in " ".join(ru)
    assert any(line[:3] == ["fa", "cases", "1"] for line in lines)  # one case: still shown
    assert any(line[:1] == ["unknown"] for line in lines)


def test_an_empty_period_says_no_surge_started_and_shows_no_language_table() -> None:
    text = render_text(empty_digest())
    assert "Surges\n  No surge started in this period." in text
    assert "by language" not in text
    html = render_html(empty_digest(), chart_cids={})
    assert "No surge started in this period." in html and "by language" not in html
    blocks = slack_payload(empty_digest(), chart_url=None)["blocks"]
    assert not any("Surges" in json.dumps(b) for b in blocks)


def test_one_language_only_is_a_table_of_one_row() -> None:
    en = figures(cases=5, unanswered=0, p50_s=100.0, p90_s=200.0, sla=1.0)
    digest = replace(empty_digest(), by_language=[GroupFigures("en", en, None)])
    html = render_html(digest, chart_cids={})
    assert html.count("<td>en</td>") == 1
    assert "<td>n/a</td>" in html  # no previous period to compare with


def test_the_html_escapes_surge_titles_and_language_codes() -> None:
    digest = replace(
        _digest(),
        by_language=[
            GroupFigures(HOSTILE, figures(cases=1, unanswered=0, p50_s=1, p90_s=1, sla=1.0), None)
        ],
    )
    html = render_html(digest, chart_cids={})
    assert "<script>" not in html
    # The sample's team and waiting handle, the surge's title and the language code.
    assert html.count(ESCAPED) == 4
    assert "<td>outage: app down <span" in html
    assert "<td>25m 00s</td><td>83% (400 of 480 judged)</td>" in html


def test_slack_gets_surges_and_languages_escaped_within_block_kit_limits() -> None:
    many = [_surge(f"surge {i}", surge_id=i) for i in range(25)]
    digest = replace(_digest(), surges=[_surge(HOSTILE), *many])
    payload = slack_payload(digest, chart_url=None)
    json.dumps(payload)
    assert len(payload["blocks"]) <= 50
    texts = [b.get("text", {}).get("text", "") for b in payload["blocks"]]
    surges = next(t for t in texts if t.startswith("*Surges*"))
    assert "<script>" not in surges and ESCAPED in surges
    assert surges.count("\n• ") == 10 and "… and 16 more in the full report" in surges
    languages = next(t for t in texts if t.startswith("*First response per case by language*"))
    assert "• ru: 40 cases · p50 15m 00s · p90 2h 00m · SLA 70%" in languages
    assert all(len(t) <= 3000 for t in texts)


def test_the_digest_carries_the_periods_surges_and_languages(
    session: Session, settings: Settings
) -> None:
    accounts = store(session, world())
    acme = accounts["acme"]
    # A Russian case and an undetected one opened on 2 May 2024, the day the digest covers.
    day = datetime(2024, 5, 2, 9, tzinfo=UTC)
    ru = make_post(session, acme, created_at=day, language="ru")
    make_case(session, acme, ru, priority="P2", first_response_at=day + timedelta(minutes=5))
    session.commit()
    now = at(36 * H)  # 3 May 2024 00:00 UTC: the digest of 2 May
    digest = build_digest(session=session, settings=settings, period="day", now=now)
    assert [s.title for s in digest.surges] == ["billing <b>twice</b>"]
    scope = Scope(digest.start, digest.end, now)
    assert digest.surges == surge_figures(
        session=session, scope=scope, sla_seconds=dict(settings.sla_seconds)
    )
    names = {g.name: g.current for g in digest.by_language}
    # The world's cases of 2 May (the billing surge's, undetected "und", and the late one's)
    # and the Russian case.
    assert names["ru"].cases == 1 and names["ru"].p50_s == 300.0
    assert names["unknown"].cases == 1
    assert sum(f.cases for f in names.values()) == digest.total.cases
    assert digest.by_language[0].current.cases >= digest.by_language[-1].current.cases
