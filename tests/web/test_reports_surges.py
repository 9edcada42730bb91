"""Surges and languages on the reports page, its CSV and its JSON: the real figures on both
databases, hostile surge titles and language codes kept inert, an empty period, and the old CSV
columns and JSON fields left as they were."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.metrics.digest_model import GroupFigures
from socialcare.metrics.figures import Scope
from socialcare.metrics.latency import latency_by
from socialcare.metrics.surge_figures import surge_figures
from socialcare.web import create_app
from socialcare.web.report_export import CSV_COLUMNS
from socialcare.web.report_query import get_digest_builder
from tests.factories import make_case, make_post
from tests.metrics.digest_samples import HOSTILE, figures, sample_digest
from tests.metrics.surge_world import store, world
from tests.metrics.test_digest_surges_languages import _surge
from tests.web.reports_support import FakeBuilder, csv_rows, number
from tests.web.signin import sign_in

NOW = datetime(2024, 5, 3, 9, 0, tzinfo=UTC)  # the default report is Thu 2 May (UTC)
DAY = datetime(2024, 5, 2, tzinfo=UTC)
# The columns the CSV had before surges and languages: kept, in this order, first.
OLD_COLUMNS = (
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
)


@pytest.fixture
def app(settings: Settings, engine: object) -> FastAPI:
    return create_app(settings, clock=lambda: NOW)


@pytest.fixture
def client(app: FastAPI, session: Session) -> Iterator[TestClient]:
    with TestClient(app) as c:
        sign_in(c, session, "manager", "lead")
        yield c


@pytest.fixture
def surge_world(session: Session) -> None:
    """The metrics tests' surge world, and a Russian case on 2 May."""
    accounts = store(session, world())
    acme = accounts["acme"]
    ru = make_post(session, acme, created_at=DAY + timedelta(hours=9), language="ru")
    make_case(
        session, acme, ru, priority="P2", first_response_at=ru.created_at + timedelta(seconds=300)
    )
    session.commit()


def test_the_old_csv_columns_come_first_and_unchanged() -> None:
    assert CSV_COLUMNS[: len(OLD_COLUMNS)] == OLD_COLUMNS


def test_the_json_and_csv_carry_the_real_surges_and_languages(
    client: TestClient, session: Session, settings: Settings, surge_world: None
) -> None:
    doc = client.get("/api/reports").json()
    rows = csv_rows(client.get("/reports.csv").text)
    scope = Scope(DAY, DAY + timedelta(days=1), NOW)
    want = surge_figures(session=session, scope=scope, sla_seconds=dict(settings.sla_seconds))
    assert [s["title"] for s in doc["surges"]] == [s.title for s in want]
    assert [s.title for s in want] == ["billing <b>twice</b>", "late"]
    for got, s in zip(doc["surges"], want, strict=True):
        assert got["time_to_detect_s"] == s.detect_s
        assert (got["posts"], got["cases"], got["within_sla"]) == (s.posts, s.cases, s.within_sla)
        assert got["time_to_first_answer_s"] == s.first_answer_s
        assert got["started_at"] == "2024-05-02T" + s.started_at.strftime("%H:%M:%S") + "Z"
    surge_rows = [r for r in rows if r["kind"] == "surge"]
    assert [r["group"] for r in surge_rows] == [s.title for s in want]
    billing = surge_rows[0]
    assert billing["started_at"] == "2024-05-02T08:00:00+00:00"
    assert number(billing["time_to_detect_s"]) == 120.0 and billing["posts"] == "1"
    assert billing["time_to_first_answer_s"] == "" and billing["p50_s"] == ""
    # By language: the same figures as `socialcare latency --by language` over the day.
    lines = latency_by(session, by="language", since=DAY, until=DAY + timedelta(days=1), now=NOW)
    by_csv = {r["group"]: r for r in rows if r["kind"] == "language"}
    by_json = {g["name"]: g["current"] for g in doc["by_language"]}
    assert set(by_csv) == set(by_json) == {line.group for line in lines} >= {"ru", "unknown"}
    for line in lines:
        assert by_json[line.group]["cases"] == line.cases
        assert by_json[line.group]["p90_s"] == line.p90_seconds
        assert number(by_csv[line.group]["cases"]) == line.cases
    assert by_json["ru"]["p50_s"] == 300.0


def test_the_page_shows_surges_and_languages_with_titles_escaped(
    client: TestClient, surge_world: None
) -> None:
    body = client.get("/reports").text
    assert "billing &lt;b&gt;twice&lt;/b&gt;" in body and "<b>twice" not in body
    assert "Thu 2 May 08:00" in body and "2m 00s" in body
    assert "n/a (none judged yet)" in body or "judged)" in body
    assert "First response per case by language" in body
    assert "<td>ru</td>" in body and "<td>unknown</td>" in body


@pytest.fixture
def fake(app: FastAPI) -> FakeBuilder:
    builder = FakeBuilder(sample_digest(), [])
    app.dependency_overrides[get_digest_builder] = lambda: builder
    return builder


def test_hostile_titles_and_codes_stay_inert_everywhere(
    client: TestClient, fake: FakeBuilder
) -> None:
    one = figures(cases=1, unanswered=0, p50_s=60.0, p90_s=60.0, sla=1.0)
    formula = '=HYPERLINK("https://evil.example","x")'
    fake.digest = replace(
        fake.digest,
        surges=[_surge(HOSTILE), _surge(formula, surge_id=2)],
        by_language=[GroupFigures(HOSTILE, one, None), GroupFigures("+1", one, None)],
    )
    body = client.get("/reports").text
    assert body.count("<script>") == 0
    # The sample's team and handle, then the surge title and the language code.
    assert body.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 4
    rows = csv_rows(client.get("/reports.csv").text)
    assert [r["group"] for r in rows if r["kind"] == "surge"] == [HOSTILE, "'" + formula]
    assert [r["group"] for r in rows if r["kind"] == "language"] == [HOSTILE, "'+1"]
    doc = client.get("/api/reports").json()
    assert [s["title"] for s in doc["surges"]] == [HOSTILE, formula]  # JSON is data, as it is
    assert doc["surges"][0]["sla_attainment"] == pytest.approx(400 / 480)


def test_an_empty_period_says_no_surge_and_has_no_language_table(
    app: FastAPI, client: TestClient, fake: FakeBuilder
) -> None:
    body = client.get("/reports").text
    assert "No surge started in this period." in body
    assert "by language" not in body
    doc = client.get("/api/reports").json()
    assert (doc["surges"], doc["by_language"]) == ([], [])
    kinds = {r["kind"] for r in csv_rows(client.get("/reports.csv").text)}
    assert kinds == {"total", "team", "priority"}
    schema = app.openapi()["components"]["schemas"]
    assert "ReportSurgeOut" in schema, sorted(schema)
    assert "time_to_first_answer_s" in schema["ReportSurgeOut"]["properties"]
    assert "by_language" in schema["ReportOut"]["properties"]
