"""Team names and brand handles are whatever someone typed: the latency CSV, from the web and
from the command line, shows them to a spreadsheet as text, never as formulas."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from socialcare.cli import app
from socialcare.metrics.spreadsheet import neutralise
from socialcare.web.app import create_app
from tests.factories import make_account, make_case, make_post, make_team
from tests.web.signin import bearer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOSTILE = ['=HYPERLINK("http://evil.example","x")', "+1+2", "@SUM(A1:A9)", "-2+3", "plain"]


def _world(session) -> None:
    account = make_account(session, "acme")
    for minutes, name in enumerate(HOSTILE):
        team = make_team(session, name)
        root = make_post(session, account, created_at=T0 + timedelta(minutes=minutes))
        make_case(session, account, root, team=team, first_response_at=T0 + timedelta(hours=1))
    session.commit()


def _groups(text: str) -> list[str]:
    return sorted(row["group"] for row in csv.DictReader(io.StringIO(text)))


def test_formula_team_names_are_text_in_every_latency_csv(settings, engine, session) -> None:
    _world(session)
    expected = sorted(["'" + n for n in HOSTILE[:4]] + ["plain"])
    with TestClient(create_app(settings)) as client:
        web = client.get("/latency.csv?by=team", headers=bearer(session))
    assert web.status_code == 200
    assert _groups(web.text) == expected
    cli = CliRunner().invoke(app, ["latency", "--by", "team", "--format", "csv"])
    assert cli.exit_code == 0, cli.output
    assert _groups(cli.output) == expected


def test_neutralise_marks_every_formula_start_and_nothing_else() -> None:
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert neutralise(start + "1") == "'" + start + "1"
    assert neutralise("care team") == "care team" and neutralise("") == ""
