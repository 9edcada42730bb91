"""Latency metrics: percentile maths, per-group figures on both databases, text and CSV output."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from socialcare.cases.models import Case
from socialcare.metrics.latency import (
    HEADERS,
    LatencyRow,
    format_csv,
    format_table,
    latency_by,
    latency_total,
)
from socialcare.posts.models import Account
from tests.factories import T0, make_account, make_case, make_post, make_team


def _case(
    session: Session,
    account: Account,
    minutes: float = 0,
    *,
    reply_after: float | None = None,
    priority: str = "P2",
    **fields: Any,
) -> Case:
    """A case opened at T0 + minutes, answered reply_after seconds later (or not)."""
    opened = T0 + timedelta(minutes=minutes)
    root = make_post(session, account, created_at=opened)
    answered = None if reply_after is None else opened + timedelta(seconds=reply_after)
    return make_case(
        session, account, root, priority=priority, first_response_at=answered, **fields
    )


def test_latency_by_brand_counts_unanswered_and_late_as_misses(session: Session) -> None:
    acme = make_account(session, "acme")
    bolt = make_account(session, "bolt")
    # acme, P2 (SLA 3600 s): 600 s met, 1800 s met, 7200 s late, one unanswered.
    _case(session, acme, 0, reply_after=600)
    _case(session, acme, 1, reply_after=1800)
    _case(session, acme, 2, reply_after=7200)
    _case(session, acme, 3)
    # bolt, P1 (SLA 900 s): exactly on the deadline counts as met.
    _case(session, bolt, 0, reply_after=900, priority="P1")
    session.commit()

    rows = latency_by(session, by="brand")
    assert [r.group for r in rows] == ["acme", "bolt"]
    acme_row, bolt_row = rows
    assert (acme_row.cases, acme_row.answered, acme_row.unanswered) == (4, 3, 1)
    assert acme_row.median_seconds == pytest.approx(1800.0)
    assert acme_row.p90_seconds == pytest.approx(1800 + 0.8 * 5400)
    assert acme_row.sla_attainment == pytest.approx(2 / 4)
    assert (bolt_row.cases, bolt_row.answered, bolt_row.unanswered) == (1, 1, 0)
    assert bolt_row.median_seconds == pytest.approx(900.0)
    assert bolt_row.sla_attainment == pytest.approx(1.0)

    total = latency_total(session)
    assert (total.group, total.cases, total.answered, total.unanswered) == ("all", 5, 4, 1)
    assert total.median_seconds == pytest.approx(1350.0)
    assert total.sla_attainment == pytest.approx(3 / 5)


def test_a_millisecond_late_is_a_miss(session: Session) -> None:
    acme = make_account(session, "acme")
    _case(session, acme, 0, reply_after=900.001, priority="P1")
    _case(session, acme, 1, reply_after=900.0, priority="P1")
    session.commit()
    (row,) = latency_by(session)
    assert row.sla_attainment == pytest.approx(0.5)


def test_latency_by_brand_labels_platform_when_several(session: Session) -> None:
    _case(session, make_account(session, "acme", platform="x"), 0, reply_after=60)
    _case(session, make_account(session, "acme", platform="mastodon"), 0)
    session.commit()
    groups = [r.group for r in latency_by(session, by="brand")]
    assert groups == ["mastodon:acme", "x:acme"]


def test_latency_by_team_priority_platform(session: Session) -> None:
    acme = make_account(session, "acme")
    billing = make_team(session, "billing")
    delivery = make_team(session, "delivery")
    _case(session, acme, 0, reply_after=120, priority="P1", team=billing)
    _case(session, acme, 1, reply_after=2000, priority="P1", team=delivery)
    _case(session, acme, 2, reply_after=300, priority="P3", team=delivery)
    _case(session, acme, 3, priority="P4")
    session.commit()

    by_team = {r.group: r for r in latency_by(session, by="team")}
    assert sorted(by_team) == ["(no team)", "billing", "delivery"]
    assert by_team["delivery"].cases == 2
    assert by_team["delivery"].median_seconds == pytest.approx(1150.0)
    assert by_team["delivery"].sla_attainment == pytest.approx(0.5)  # P1 2000 s > 900 s
    assert by_team["(no team)"].unanswered == 1
    assert by_team["(no team)"].median_seconds is None
    assert by_team["(no team)"].sla_attainment == 0.0

    by_priority = {r.group: r for r in latency_by(session, by="priority")}
    assert [r.group for r in latency_by(session, by="priority")] == ["P1", "P3", "P4"]
    assert by_priority["P1"].sla_attainment == pytest.approx(0.5)
    assert by_priority["P3"].sla_attainment == pytest.approx(1.0)

    by_platform = latency_by(session, by="platform")
    assert [(r.group, r.cases, r.answered) for r in by_platform] == [("x", 4, 3)]

    with pytest.raises(ValueError):
        latency_by(session, by="colour")


def test_latency_since_until_and_now(session: Session) -> None:
    acme = make_account(session, "acme")
    _case(session, acme, -60, reply_after=100)  # before the window
    _case(session, acme, 0, reply_after=200)  # at since: included
    _case(session, acme, 30, reply_after=400)
    _case(session, acme, 60, reply_after=800)  # at until: excluded
    session.commit()

    (row,) = latency_by(session, since=T0, until=T0 + timedelta(minutes=60))
    assert (row.cases, row.answered) == (2, 2)
    assert row.median_seconds == pytest.approx(300.0)
    assert latency_by(session, since=T0 + timedelta(days=1)) == []
    assert latency_total(session, since=T0 + timedelta(days=1)).sla_attainment is None

    # As of T0 + 33 min: the 400 s reply (due at 30 min + 400 s) has not happened yet.
    (as_of,) = latency_by(session, since=T0, now=T0 + timedelta(minutes=33))
    assert (as_of.cases, as_of.answered, as_of.unanswered) == (2, 1, 1)
    # The unanswered one still has time: it is not judged yet.
    assert as_of.sla_attainment == pytest.approx(1.0)


def test_case_without_due_date_uses_priority_sla(session: Session) -> None:
    acme = make_account(session, "acme")
    _case(session, acme, 0, reply_after=1000, priority="P1", sla_due_at=None)
    _case(session, acme, 1, reply_after=1000, priority="P2", sla_due_at=None)
    session.commit()
    (row,) = latency_by(session, sla_seconds={"P1": 900, "P2": 3600})
    assert row.sla_attainment == pytest.approx(0.5)


def test_csv_round_trip(session: Session) -> None:
    acme = make_account(session, "acme")
    bolt = make_account(session, "bolt")
    _case(session, acme, 0, reply_after=100.04)
    _case(session, acme, 1, reply_after=200.0)
    _case(session, acme, 2)
    _case(session, bolt, 0)
    session.commit()
    rows = latency_by(session)
    parsed = list(csv.reader(io.StringIO(format_csv(rows))))
    assert parsed[0] == list(HEADERS)
    assert parsed[1] == ["acme", "3", "2", "1", "150.0", "190.0", "66.7"]
    assert parsed[2] == ["bolt", "1", "0", "1", "", "", "0.0"]
    for line, row in zip(parsed[1:], rows, strict=True):
        assert line[0] == row.group
        assert int(line[1]) == row.cases
        median = None if line[4] == "" else float(line[4])
        assert median == pytest.approx(row.median_seconds, abs=0.05)


def test_format_table_aligns() -> None:
    rows = [
        LatencyRow("acme", 3, 2, 1, 150.0, 190.0, 2 / 3),
        LatencyRow("a-much-longer-brand", 1, 0, 1, None, None, 0.0),
    ]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == list(HEADERS)
    assert lines[2].split() == ["acme", "3", "2", "1", "150.0", "190.0", "66.7"]
    assert lines[3].split() == ["a-much-longer-brand", "1", "0", "1", "-", "-", "0.0"]
    assert len({len(line) for line in lines[:3]}) == 1  # right-aligned columns line up
    assert format_table([]).splitlines()[0].split() == list(HEADERS)


def test_latency_by_local_hour_of_the_customers_post(session: Session) -> None:
    acme = make_account(session, "acme")
    # T0 is UTC; in New York (UTC-4 or -5 by season) these land in two different local hours.
    _case(session, acme, 0, reply_after=100)
    _case(session, acme, 10, reply_after=300)
    _case(session, acme, 60, reply_after=50)
    session.commit()
    from zoneinfo import ZoneInfo

    ny = ZoneInfo("America/New_York")
    hours = [(T0 + timedelta(minutes=m)).astimezone(ny).hour for m in (0, 10, 60)]
    rows = latency_by(session, by="hour", tz="America/New_York")
    assert [r.group for r in rows] == sorted({f"{h:02d}" for h in hours})
    first = rows[0]
    assert (first.cases, first.median_seconds) == (2, pytest.approx(200.0))
