"""`socialcare latency --unit case|post`, /latency?unit= and /latency.csv?unit=: each says which
unit its figures measure (first response per case, next reply per customer post)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from socialcare.cli import app
from socialcare.web.app import create_app
from tests.factories import make_account, make_case, make_post
from tests.web.signin import bearer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POST_LINE = ["post", "acme", "2", "2", "0", "1050.0", "1650.0", "1725.0", "1050.0", "100.0"]
PERCENTILES = ["p50_s", "p90_s", "p95_s", "mean_s", "sla_%"]
CASE_LINE = ["case", "acme", "1", "1", "0", "300.0", "300.0", "300.0", "300.0", "100.0"]


def _world(session: Session) -> None:
    """One case of two customer posts: answered after 300 s, then after 1800 s (P2)."""
    acme = make_account(session, "acme")
    first = make_post(session, acme, created_at=T0, author_handle="kim")
    case = make_case(session, acme, first, priority="P2", first_response_at=T0 + timedelta(0, 300))
    answer = make_post(
        session, acme, "sorry!", created_at=T0 + timedelta(0, 300), is_brand=True, in_reply_to=first
    )
    second = make_post(
        session,
        acme,
        "still broken",
        created_at=T0 + timedelta(0, 600),
        author_handle="kim",
        in_reply_to=answer,
        case=case,
    )
    make_post(
        session,
        acme,
        "fixed",
        created_at=T0 + timedelta(0, 2400),
        is_brand=True,
        in_reply_to=second,
    )
    session.commit()


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_web_page_and_csv_name_their_unit(settings, engine, session) -> None:
    _world(session)
    with TestClient(create_app(settings)) as client:
        client.headers.update(bearer(session))
        posts = client.get("/latency?unit=post&by=brand")
        cases = client.get("/latency")
        post_csv = client.get("/latency.csv?unit=post")
        case_csv = client.get("/latency.csv?unit=case&by=brand")
        plain_csv = client.get("/latency.csv")
        bad = [client.get("/latency?unit=tweet"), client.get("/latency.csv?unit=tweet")]
    assert posts.status_code == cases.status_code == 200
    assert "Next-reply latency per customer post, by brand" in posts.text
    assert "<th>posts</th>" in posts.text and "1050.0 s" in posts.text
    assert 'href="/latency.csv?by=brand&amp;unit=post"' in posts.text
    assert 'href="/latency?by=team&amp;unit=post"' in posts.text  # regrouping keeps the unit
    assert "First-response latency per case, by brand" in cases.text
    assert "<th>cases</th>" in cases.text and "Next-reply latency" not in cases.text
    assert 'href="/latency?by=brand&amp;unit=post"' in cases.text

    assert post_csv.status_code == 200
    assert 'filename="latency-post-brand.csv"' in post_csv.headers["content-disposition"]
    assert _csv(post_csv.text) == [
        ["unit", "group", "posts", "answered", "unanswered", *PERCENTILES],
        POST_LINE,
    ]
    assert _csv(case_csv.text)[1] == CASE_LINE
    # Without a unit: the first-response CSV, columns as they always were.
    assert _csv(plain_csv.text) == [
        ["group", "cases", "answered", "unanswered", "p50_s", "p90_s", "sla_%"],
        ["acme", "1", "1", "0", "300.0", "300.0", "100.0"],
    ]
    assert [r.status_code for r in bad] == [400, 400]


def test_the_command_names_its_unit(settings, engine, session) -> None:
    _world(session)
    runner = CliRunner()
    post_table = runner.invoke(app, ["latency", "--unit", "post"])
    case_table = runner.invoke(app, ["latency"])
    assert post_table.exit_code == case_table.exit_code == 0, post_table.output
    assert post_table.stderr == "next reply per customer post, by brand\n"
    assert case_table.stderr == "first response per case, by brand\n"
    header, _, row = post_table.stdout.splitlines()
    assert header.split()[:2] == ["group", "posts"]
    assert row.split() == POST_LINE[1:]
    assert case_table.stdout.splitlines()[2].split() == CASE_LINE[1:]

    post_csv = runner.invoke(app, ["latency", "--unit", "post", "--format", "csv"])
    assert post_csv.exit_code == 0 and post_csv.stderr == ""
    assert _csv(post_csv.stdout)[1] == POST_LINE
    case_csv = runner.invoke(app, ["latency", "--format", "csv"])
    assert _csv(case_csv.stdout)[1] == CASE_LINE

    bad = runner.invoke(app, ["latency", "--unit", "tweet"])
    assert bad.exit_code != 0 and "--unit is case or post" in bad.output
