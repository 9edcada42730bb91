"""The reports page, its charts, CSV and JSON on both databases.

Two groups: the page's own work (query checks, navigation, escaping, CSV injection, PNGs, the
JSON schema) runs on hand-made digests handed in through get_digest_builder and on the real
build_digest; the figures group builds cases with known first-response times and checks the
real build_digest's numbers against a plain-Python computation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.metrics.digest import period_bounds
from socialcare.metrics.digest_model import GroupFigures
from socialcare.web import create_app
from socialcare.web.report_query import get_digest_builder
from tests.factories import make_account, make_case, make_post, make_team
from tests.metrics.digest_samples import HOSTILE, png_size, sample_digest
from tests.web.reports_support import (
    FakeBuilder,
    assert_json_matches_csv,
    csv_rows,
    headline,
    number,
    quantile,
)
from tests.web.signin import sign_in

NOW = datetime(2024, 5, 3, 9, 0, tzinfo=UTC)  # a Friday: the default report is Thu 2 May
CHARTS = ("distribution", "trend", "sla_trend", "volume")
FORMULAS = ('=HYPERLINK("https://evil.example","x")', "+1+2", "-3", "@SUM(A1)")
ENDPOINTS = ("/reports.csv", "/api/reports", "/reports/chart/trend.png")


@pytest.fixture
def app(settings: Settings, engine: object) -> FastAPI:
    return create_app(settings, clock=lambda: NOW)


@pytest.fixture
def client(app: FastAPI, session: Session) -> Iterator[TestClient]:
    with TestClient(app) as c:
        sign_in(c, session, "manager", "lead")
        yield c


@pytest.fixture
def fake(app: FastAPI) -> FakeBuilder:
    """The pages get the sample digest (hostile team and handle) instead of build_digest's."""
    builder = FakeBuilder(sample_digest(), [])
    app.dependency_overrides[get_digest_builder] = lambda: builder
    return builder


# The page's own work: runs for real whatever build_digest's figures are.


def test_the_page_has_the_layout_the_period_and_a_nav_link(client: TestClient) -> None:
    page = client.get("/reports")
    assert page.status_code == 200
    assert "<title>reports · socialcare queue</title>" in page.text
    assert '<a href="/reports">reports</a>' in page.text
    assert "Thu 2 May 2024" in page.text and "(UTC)" in page.text
    for label in ("Cases", "Answered", "Unanswered", "p95 first response", "Within SLA"):
        assert f'<th scope="row">{label}</th>' in page.text
    assert "Detection (median)" in page.text and "Handling (median)" in page.text
    for name in CHARTS:
        assert f'<img src="/reports/chart/{name}.png?period=day&amp;tz=UTC"' in page.text
    assert 'href="/reports.csv?period=day&amp;tz=UTC"' in page.text


def test_the_page_writes_the_digests_figures_beside_the_previous_ones(
    client: TestClient, fake: FakeBuilder
) -> None:
    body = client.get("/reports").text
    # sample: p50 245 s (was 300 s), SLA 92% (was 88%), 7 of 120 unanswered (was 9 of 100)
    assert headline(body, "p50 first response") == ["4m 05s", "5m 00s", "↓ -18%"]
    assert headline(body, "Within SLA") == ["92%", "88%", "↑ +4 pts"]
    assert headline(body, "Unanswered") == ["7", "9", "↓ -2"]
    assert headline(body, "Cases") == ["120", "100", "↑ +20"]
    assert '<td class="num better">↓ -18%</td>' in body
    assert "12,345" in body  # followers exposed
    assert "Billing &amp; Accounts" in body and "Business hours" in body
    assert '<a href="https://x.com/i/status/1?a=1&amp;b=&lt;2&gt;"' in body
    assert "javascript:" not in body  # a link that is not http(s) is shown as text only


def test_hostile_names_and_handles_are_escaped_in_the_page(
    client: TestClient, fake: FakeBuilder, session: Session
) -> None:
    make_account(session, HOSTILE)
    session.commit()
    page = client.get("/reports", params={"account": HOSTILE})
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert '<option value="&lt;script&gt;alert(1)&lt;/script&gt;" selected>' in page.text
    assert "<script" not in page.text
    assert 'style="' not in page.text  # the policy allows no inline styles


def test_the_builder_gets_the_period_zone_account_and_moment(
    client: TestClient, fake: FakeBuilder, session: Session
) -> None:
    acme = make_account(session, "AcmeCare")
    session.commit()
    client.get("/reports")
    client.get("/api/reports", params={"tz": "Europe/Berlin", "account": "@acmecare"})
    client.get("/reports.csv", params={"period": "week", "end": "2024-04-21"})
    first, second, third = fake.calls
    assert (first["period"], first["tz"], first["account_id"], first["now"]) == (
        "day",
        "UTC",
        None,
        NOW,
    )
    assert (second["tz"], second["account_id"]) == ("Europe/Berlin", acme.id)
    # an older week is taken as late as still names it: the end of the week after it
    assert third["now"] == datetime(2024, 4, 29, tzinfo=UTC) - timedelta(microseconds=1)
    assert period_bounds("week", now=third["now"], tz="UTC")[0] == datetime(2024, 4, 15, tzinfo=UTC)


def test_navigation_walks_to_the_previous_and_next_period(client: TestClient) -> None:
    latest = client.get("/reports").text
    assert 'href="/reports?period=day&amp;tz=UTC&amp;end=2024-05-01" rel="prev"' in latest
    assert 'rel="next"' not in latest  # the next day is today, not over yet
    older = client.get("/reports", params={"end": "2024-04-29"}).text
    assert "Mon 29 Apr 2024" in older
    assert 'end=2024-04-28" rel="prev"' in older and 'end=2024-04-30" rel="next"' in older
    week = client.get("/reports", params={"period": "week", "end": "2024-05-01"}).text
    assert "22 Apr – 28 Apr 2024" in week  # the last whole week ending by 1 May
    assert 'end=2024-04-21" rel="prev"' in week and 'rel="next"' not in week


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": "month"}, "period must be one of day, week, got &#39;month&#39;"),
        ({"tz": "Mars/Olympus"}, "unknown time zone &#39;Mars/Olympus&#39;"),
        ({"tz": HOSTILE}, "unknown time zone &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39;"),
        ({"end": "2024-13-01"}, "end must be a date as YYYY-MM-DD"),
        ({"end": "yesterday"}, "end must be a date as YYYY-MM-DD"),
        ({"end": "2024-05-03"}, "end must be a day before today (2024-05-03 in UTC)"),
        ({"end": "0001-01-01"}, "end must be 2000-01-01 or later"),
        ({"account": "nobody"}, "unknown account &#39;nobody&#39;"),
    ],
)
def test_bad_query_values_get_a_400_with_a_clear_message(
    client: TestClient, params: dict[str, str], message: str
) -> None:
    page = client.get("/reports", params=params)
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert message in page.text and "<script" not in page.text
    for path in ENDPOINTS:
        response = client.get(path, params=params)
        assert response.status_code == 400, path
        assert response.json()["detail"].startswith(message.split(" ")[0])


def test_an_unknown_chart_is_404(client: TestClient) -> None:
    assert client.get("/reports/chart/pie.png").status_code == 404
    assert client.get("/reports/chart/trend.gif").status_code == 404


@pytest.mark.parametrize("name", CHARTS)
def test_each_chart_is_a_png_for_a_busy_and_an_empty_period(
    app: FastAPI, client: TestClient, name: str
) -> None:
    empty = client.get(f"/reports/chart/{name}.png")  # the real build_digest, no cases
    builder = FakeBuilder(sample_digest(), [])
    app.dependency_overrides[get_digest_builder] = lambda: builder
    busy = client.get(f"/reports/chart/{name}.png", params={"period": "week"})
    for response in (empty, busy):
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert response.headers["cache-control"] == "private, max-age=300"
        assert png_size(response.content) == (320, 700)
    assert empty.content != busy.content


def test_formula_names_are_neutralised_in_the_csv(client: TestClient, fake: FakeBuilder) -> None:
    base = fake.digest.by_team[0]
    fake.digest = replace(
        fake.digest, by_team=[GroupFigures(f, base.current, base.previous) for f in FORMULAS]
    )
    response = client.get("/reports.csv")
    names = [row["group"] for row in csv_rows(response.text) if row["kind"] == "team"]
    assert names == ["'" + f for f in FORMULAS]


def test_the_csv_is_an_attachment_with_a_row_for_each_group(
    client: TestClient, fake: FakeBuilder, session: Session
) -> None:
    make_account(session, '=HYPERLINK("x")')
    session.commit()
    response = client.get("/reports.csv", params={"account": '=HYPERLINK("x")', "tz": "Asia/Tokyo"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="report-day-2024-05-02-HYPERLINK_x.csv"'
    )
    rows = csv_rows(response.text)
    assert [(r["group"], r["kind"]) for r in rows] == [
        ("total", "total"),
        ("Billing & Accounts", "team"),
        (HOSTILE, "team"),  # CSV is not HTML: the name as it is, with nothing to run
        ("P1", "priority"),
    ]
    total = rows[0]
    assert (total["period_start"], total["period_end"]) == (
        "2024-05-02T00:00:00+09:00",
        "2024-05-03T00:00:00+09:00",
    )
    assert (total["cases"], total["answered"], total["unanswered"]) == ("120", "113", "7")
    assert [number(total[k]) for k in ("p50_s", "p90_s", "p95_s", "mean_s")] == [
        245.0,
        720.0,
        1080.0,
        343.0,
    ]
    assert number(total["sla_attainment"]) == 0.92
    assert number(total["previous_p90_s"]) == 1080.0
    assert rows[1]["previous_p50_s"] == ""  # a team without a previous period


def test_the_json_matches_the_csv_and_is_in_the_schema(
    app: FastAPI, client: TestClient, fake: FakeBuilder
) -> None:
    params = {"period": "week", "tz": "Europe/London"}
    assert_json_matches_csv(client, params)
    schema = app.openapi()
    ok = schema["paths"]["/api/reports"]["get"]["responses"]["200"]["content"]
    assert ok["application/json"]["schema"]["$ref"].endswith("/ReportOut")
    assert "sla_attainment" in schema["components"]["schemas"]["FiguresOut"]["properties"]


# The figures: known first-response times, expectations computed here in plain Python.

DAY, BEFORE = datetime(2024, 5, 2, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC)
SLA = {"P1": 900, "P2": 3600, "P3": 14400}
# (brand, team, priority, opened at hour, seconds to first public reply or None)
CASES = [
    ("acme", "billing", "P2", DAY + timedelta(hours=8), 120),
    ("acme", "billing", "P2", DAY + timedelta(hours=9), 300),
    ("acme", "billing", "P2", DAY + timedelta(hours=10), 600),
    ("acme", "delivery", "P1", DAY + timedelta(hours=11), 60),
    ("acme", "delivery", "P1", DAY + timedelta(hours=12), 1200),  # late: SLA missed
    ("acme", "delivery", "P1", DAY + timedelta(hours=13), None),  # still waiting
    ("bolt", "billing", "P3", DAY + timedelta(hours=14), 90),
    ("acme", "billing", "P2", BEFORE + timedelta(hours=8), 240),
    ("acme", "billing", "P2", BEFORE + timedelta(hours=9), 480),
    ("acme", "delivery", "P1", BEFORE + timedelta(hours=10), 100),
    ("acme", "billing", "P2", BEFORE - timedelta(hours=1), 5),  # before both periods
    ("acme", "billing", "P2", NOW - timedelta(hours=8), 9999),  # today: not over yet
]
DETECTED, CLAIMED = 5, 35  # seconds after the post: detected (and queued), claimed


@pytest.fixture
def figures_world(session: Session) -> None:
    accounts = {name: make_account(session, name) for name in ("acme", "bolt")}
    teams = {name: make_team(session, name) for name in ("billing", "delivery")}
    for brand, team, priority, opened, reply in CASES:
        root = make_post(
            session,
            accounts[brand],
            created_at=opened,
            author_handle="still_waiting" if reply is None else None,
            author_followers={None: 5000, 1200: 0}.get(reply, 100),
        )
        make_case(
            session,
            accounts[brand],
            root,
            priority=priority,
            team=teams[team],
            status="claimed" if reply is None else "responded",
            detected_at=opened + timedelta(seconds=DETECTED),
            queued_at=opened + timedelta(seconds=DETECTED),
            claimed_at=opened + timedelta(seconds=CLAIMED),
            first_response_at=None if reply is None else opened + timedelta(seconds=reply),
        )
    session.commit()


def expected(start: datetime, *, brand: str | None = None, **match: str) -> dict[str, Any]:
    """The figures of the cases opened on the day from start that match, worked out by hand."""
    picked = [
        c
        for c in CASES
        if start <= c[3] < start + timedelta(days=1)
        and (brand is None or c[0] == brand)
        and all(c[{"team": 1, "priority": 2}[k]] == v for k, v in match.items())
    ]
    replies = [float(c[4]) for c in picked if c[4] is not None]
    met = sum(1 for c in picked if c[4] is not None and c[4] <= SLA[c[2]])
    return {
        "cases": len(picked),
        "answered": len(replies),
        "unanswered": len(picked) - len(replies),
        "p50_s": quantile(replies, 0.5),
        "p90_s": quantile(replies, 0.9),
        "p95_s": quantile(replies, 0.95),
        "mean_s": sum(replies) / len(replies) if replies else None,
        "sla_attainment": met / len(picked) if picked else None,
        "detection_p50_s": float(DETECTED) if picked else None,
        "waiting_p50_s": float(CLAIMED - DETECTED) if picked else None,
        "handling_p50_s": quantile([r - CLAIMED for r in replies], 0.5),
    }


def assert_row(row: dict[str, str], want: dict[str, Any], before: dict[str, Any]) -> None:
    for key, value in want.items():
        assert number(row[key]) == pytest.approx(value, abs=1e-3), (row["group"], key)
    for key in ("p50_s", "p90_s", "sla_attainment"):
        got = number(row[f"previous_{key}"])
        assert got == pytest.approx(before[key], abs=1e-3), (row["group"], f"previous_{key}")


def test_the_csv_figures_equal_a_computation_by_hand(
    client: TestClient, figures_world: None
) -> None:
    rows = {(r["kind"], r["group"]): r for r in csv_rows(client.get("/reports.csv").text)}
    assert_row(rows[("total", "total")], expected(DAY), expected(BEFORE))
    for kind in ("team", "priority"):
        names = {c[1] if kind == "team" else c[2] for c in CASES if c[3] >= DAY}
        for name in names:
            want, before = expected(DAY, **{kind: name}), expected(BEFORE, **{kind: name})
            assert_row(rows[(kind, name)], want, before)


def test_the_page_shows_the_figures_formatted_and_who_is_waiting(
    client: TestClient, figures_world: None
) -> None:
    body = client.get("/reports").text
    now, before = expected(DAY), expected(BEFORE)
    assert (now["cases"], now["unanswered"], now["p50_s"]) == (7, 1, 210.0)
    assert headline(body, "Cases")[:2] == ["7", "3"]
    assert headline(body, "Unanswered")[:2] == ["1", "0"]
    assert headline(body, "p50 first response")[:2] == ["3m 30s", "4m 00s"]
    assert headline(body, "Within SLA")[:2] == ["71%", "100%"]
    assert before["p50_s"] == 240.0
    assert "@still_waiting" in body and "still unanswered" in body
    assert '<strong class="exposure">5,000</strong>' in body


def test_an_account_report_leaves_other_brands_out(client: TestClient, figures_world: None) -> None:
    rows = {
        (r["kind"], r["group"]): r
        for r in csv_rows(client.get("/reports.csv", params={"account": "acme"}).text)
    }
    assert_row(
        rows[("total", "total")], expected(DAY, brand="acme"), expected(BEFORE, brand="acme")
    )
    assert rows[("team", "billing")]["cases"] == "3"
    assert ("priority", "P3") not in rows


def test_the_json_matches_the_csv_on_the_real_figures(
    client: TestClient, figures_world: None
) -> None:
    assert_json_matches_csv(client, {"period": "day"})
    assert_json_matches_csv(client, {"period": "week", "tz": "America/New_York", "account": "bolt"})


def test_the_page_shows_whether_the_answer_helped(client: TestClient, session: Session) -> None:
    from tests.factories import make_agent, make_reply, make_score

    account = make_account(session, "acme")
    team = make_team(session, "care")
    agent = make_agent(session, "ana")
    opened = DAY + timedelta(hours=9)
    root = make_post(session, account, created_at=opened)
    case = make_case(
        session, account, root, team=team, first_response_at=opened + timedelta(minutes=10)
    )
    make_score(session, root, probabilities={"negative": 0.9, "neutral": 0.0, "positive": 0.1})
    later = make_post(
        session,
        account,
        "thanks, sorted",
        created_at=opened + timedelta(minutes=30),
        author_handle=root.author_handle,
        author_external_id=root.author_external_id,
        case=case,
    )
    make_score(session, later, probabilities={"negative": 0.1, "neutral": 0.3, "positive": 0.6})
    make_reply(
        session, case, agent_id=agent.id, state="sent", sent_at=opened + timedelta(minutes=10)
    )
    session.commit()
    body = client.get("/reports").text
    # Before: 0.1 - 0.9 = -0.80; after: 0.6 - 0.1 = +0.50; change +1.30.
    assert "sentiment before and after the first response, by team" in body
    assert "sentiment before and after the first response, by agent" in body
    for row in ('<th scope="row">care</th>', '<th scope="row">ana</th>'):
        assert row in body
    assert body.count("-0.80") == 2 and body.count("+0.50") == 2 and body.count("+1.30") == 2


def test_every_customer_posts_wait_is_shown_apart_from_the_cases_first_response(
    client: TestClient, figures_world: None
) -> None:
    body = client.get("/reports").text
    doc = client.get("/api/reports").json()
    rows = {(r["kind"], r["group"]): r for r in csv_rows(client.get("/reports.csv").text)}
    day_posts = sum(1 for c in CASES if DAY <= c[3] < DAY + timedelta(days=1))
    # No brand post answers any of them here (the cases' first responses are set by hand):
    # every customer post still waits for the brand's next public reply.
    assert doc["next_reply"]["cases"] == day_posts == 7
    assert doc["next_reply"]["answered"] == 0 and doc["next_reply"]["p50_s"] is None
    assert headline(body, "Customer posts")[:2] == ["7", "3"]
    assert headline(body, "Unanswered")[:2] == ["1", "0"]  # the case table's row comes first
    assert "Every customer post: the wait for the brand" in body
    assert rows[("post", "every customer post")]["unanswered"] == "7"
    assert rows[("total", "total")]["answered"] == "6"  # the cases' own figures are unchanged
