"""First response (and next reply) by language on both databases: a case under its first post's
language, a post under its own, "unknown" and "not detected" named as such, a language of one
case still shown, and the same figures the totals come from."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from socialcare.metrics.latency import format_csv, format_table, latency_by, latency_total
from tests.factories import SLA_SECONDS, T0, make_account, make_case, make_post

NOW = T0 + timedelta(days=2)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _percentile(values: list[float], q: float) -> float:
    """Linear between the two nearest ranks, as the figures interpolate."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# (language of the first post, first-response seconds or None, priority)
CASES = [
    ("ru", 300.0, "P2"),
    ("ru", 5400.0, "P2"),  # late
    ("ru", 7200.0, "P3"),
    ("ru", None, "P2"),  # unanswered, past its SLA by NOW
    ("en", 60.0, "P2"),
    ("en", 120.0, "P2"),
    ("fa", 30000.0, "P3"),  # one case only: still shown
    ("und", 900.0, "P2"),
    (None, 100.0, "P2"),  # stored before languages were detected
]
LABEL = {"und": "unknown", None: "not detected"}


def _store(session: Session) -> None:
    acme = make_account(session, "acme")
    for n, (language, frt, priority) in enumerate(CASES):
        post = make_post(session, acme, created_at=at(n * 60), language=language)
        answered = None if frt is None else at(n * 60 + frt)
        case = make_case(session, acme, post, priority=priority, first_response_at=answered)
        # A later post in another language does not move the case's language.
        make_post(session, acme, created_at=at(n * 60 + 10), case=case, language="es")
    session.commit()


def test_first_response_by_language_equals_a_plain_python_reference(session: Session) -> None:
    _store(session)
    rows = {r.group: r for r in latency_by(session, by="language", now=NOW)}
    assert set(rows) == {"ru", "en", "fa", "unknown", "not detected"}
    for language in {c[0] for c in CASES}:
        mine = [c for c in CASES if c[0] == language]
        waits = [frt for _, frt, _ in mine if frt is not None]
        within = sum(1 for _, frt, p in mine if frt is not None and frt <= SLA_SECONDS[p])
        row = rows[LABEL.get(language, language)]  # type: ignore[arg-type]
        assert (row.cases, row.answered, row.unanswered) == (
            len(mine),
            len(waits),
            len(mine) - len(waits),
        )
        assert row.median_seconds == pytest.approx(statistics.median(waits))
        assert row.p90_seconds == pytest.approx(_percentile(waits, 0.9))
        assert row.p95_seconds == pytest.approx(_percentile(waits, 0.95))
        # Every case here is judged by NOW (answered, or waited past its SLA).
        assert row.sla_attainment == pytest.approx(within / len(mine))
    assert rows["ru"].sla_attainment == pytest.approx(0.5)


def test_languages_add_up_to_the_total(session: Session) -> None:
    _store(session)
    rows = latency_by(session, by="language", now=NOW)
    total = latency_total(session, now=NOW)
    assert sum(r.cases for r in rows) == total.cases == len(CASES)
    assert sum(r.answered for r in rows) == total.answered


def test_next_reply_by_language_groups_each_post_by_its_own_language(session: Session) -> None:
    _store(session)
    rows = {r.group: r for r in latency_by(session, by="language", unit="post", now=NOW)}
    # The follow-up posts are all Spanish: one group of their own.
    assert rows["es"].cases == len(CASES)
    assert rows["ru"].cases == 4 and rows["not detected"].cases == 1


def test_one_language_only_gives_one_row_equal_to_the_total(session: Session) -> None:
    acme = make_account(session, "acme")
    for n in range(3):
        post = make_post(session, acme, created_at=at(n * 60), language="ru")
        make_case(session, acme, post, priority="P2", first_response_at=at(n * 60 + 100 * (n + 1)))
    session.commit()
    (row,) = latency_by(session, by="language", now=NOW)
    total = latency_total(session, now=NOW)
    assert row.group == "ru"
    assert (row.cases, row.median_seconds, row.p90_seconds, row.sla_attainment) == (
        total.cases,
        total.median_seconds,
        total.p90_seconds,
        total.sla_attainment,
    )


def test_a_language_code_with_markup_stays_text_in_the_table_and_csv(session: Session) -> None:
    acme = make_account(session, "acme")
    post = make_post(session, acme, created_at=at(0), language="=1+<b>")
    make_case(session, acme, post, priority="P2", first_response_at=at(60))
    session.commit()
    rows = latency_by(session, by="language", now=NOW)
    assert [r.group for r in rows] == ["=1+<b>"]
    assert "'=1+<b>" in format_csv(rows, unit="case")  # a formula cell neutralised
    assert "=1+<b>" in format_table(rows, unit="case")


def test_the_command_line_and_latency_page_group_by_language(settings, engine, session) -> None:
    import csv
    import io

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from socialcare.cli import app
    from socialcare.web.app import create_app
    from tests.web.signin import bearer

    _store(session)
    cli = CliRunner().invoke(app, ["latency", "--by", "language", "--format", "csv"])
    assert cli.exit_code == 0, cli.output
    rows = {r["group"]: r for r in csv.DictReader(io.StringIO(cli.output))}
    assert set(rows) == {"en", "fa", "not detected", "ru", "unknown"}
    assert (rows["ru"]["unit"], rows["ru"]["cases"], rows["fa"]["cases"]) == ("case", "4", "1")
    with TestClient(create_app(settings)) as client:
        web = client.get("/latency.csv?by=language&unit=post", headers=bearer(session))
    assert web.status_code == 200
    posts = {r["group"]: r for r in csv.DictReader(io.StringIO(web.text))}
    assert posts["es"]["posts"] == str(len(CASES))
