"""Digest figures computed in SQL equal plain Python over the same cases, on both databases."""

from __future__ import annotations

import random
import statistics
from datetime import timedelta

import pytest
from sqlalchemy import select

from socialcare.cases.models import Case
from socialcare.db import session_scope
from socialcare.metrics.figures import Scope, figures_by, total_figures
from socialcare.people.models import Team
from socialcare.posts.models import Account
from tests.factories import T0, make_account, make_case, make_post, make_team

SLA = {"P1": 900, "P2": 3600, "P3": 14400, "P4": 86400}
NOW = T0 + timedelta(days=2)


def quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (statistics' inclusive method)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(q * 100) - 1]


def expected(cases: list[Case], now=NOW) -> dict:
    """The figures, the slow obvious way: one case at a time."""

    def seconds(a, b):
        return (a - b).total_seconds()

    answered = [c for c in cases if c.first_response_at is not None and c.first_response_at <= now]
    frt = [seconds(c.first_response_at, c.opened_at) for c in answered]
    met = missed = 0
    for c in cases:
        allowed = (
            seconds(c.sla_due_at, c.opened_at) if c.sla_due_at is not None else SLA[c.priority]
        )
        if c in answered:
            ok = seconds(c.first_response_at, c.opened_at) <= allowed
            met, missed = met + ok, missed + (not ok)
        elif seconds(now, c.opened_at) > allowed:
            missed += 1
    claimed = [c for c in cases if c.claimed_at is not None and c.claimed_at <= now]
    handled = [c for c in claimed if c in answered and c.first_response_at >= c.claimed_at]
    return {
        "cases": len(cases),
        "answered": len(answered),
        "unanswered": len(cases) - len(answered),
        "p50_s": quantile(frt, 0.5),
        "p90_s": quantile(frt, 0.9),
        "p95_s": quantile(frt, 0.95),
        "mean_s": statistics.fmean(frt) if frt else None,
        "sla_attainment": met / (met + missed) if met + missed else None,
        "detection_p50_s": quantile([seconds(c.detected_at, c.opened_at) for c in cases], 0.5),
        "waiting_p50_s": quantile([seconds(c.claimed_at, c.queued_at) for c in claimed], 0.5),
        "handling_p50_s": quantile(
            [seconds(c.first_response_at, c.claimed_at) for c in handled], 0.5
        ),
    }


def assert_figures(actual, wanted: dict) -> None:
    for name, value in wanted.items():
        got = getattr(actual, name)
        if value is None:
            assert got is None, name
        else:
            assert got == pytest.approx(value, abs=0.01), name


@pytest.fixture
def mixed(session):
    """Sixty cases in two teams and four priorities: answered on time and late, still waiting
    within and past their SLA, claimed before and after the answer, some without a due time."""
    rng = random.Random(7)
    account = make_account(session)
    teams = [make_team(session, "swat"), make_team(session, "billing")]
    for i in range(60):
        opened = T0 + timedelta(minutes=rng.randint(0, 24 * 60 - 1), seconds=rng.randint(0, 59))
        priority = rng.choice(list(SLA))
        root = make_post(session, account, created_at=opened)
        reply = opened + timedelta(seconds=rng.randint(30, 30_000)) if rng.random() < 0.7 else None
        claim = opened + timedelta(seconds=rng.randint(20, 20_000)) if rng.random() < 0.6 else None
        make_case(
            session,
            account,
            root,
            priority=priority,
            team=rng.choice(teams),
            first_response_at=reply,
            claimed_at=claim,
            detected_at=opened + timedelta(seconds=rng.randint(1, 400)),
            queued_at=opened + timedelta(seconds=rng.randint(5, 500) + 400),
            sla_due_at=None if i % 7 == 0 else opened + timedelta(seconds=SLA[priority]),
        )
    # Replies after NOW do not count yet; a case opened after the scope's end is out of it.
    late_root = make_post(session, account, created_at=T0 + timedelta(hours=3))
    make_case(session, account, late_root, first_response_at=NOW + timedelta(hours=1))
    out_root = make_post(session, account, created_at=T0 + timedelta(days=1, minutes=1))
    make_case(session, account, out_root, first_response_at=T0 + timedelta(days=1, minutes=5))
    session.commit()
    return account.id


def _in_scope(session) -> list[Case]:
    return list(
        session.execute(
            select(Case).where(Case.opened_at >= T0, Case.opened_at < T0 + timedelta(days=1))
        ).scalars()
    )


def test_total_figures_equal_the_case_by_case_computation(settings, session, mixed):
    scope = Scope(start=T0, end=T0 + timedelta(days=1), now=NOW)
    with session_scope(settings) as s:
        actual = total_figures(session=s, scope=scope, sla_seconds=SLA)
        cases = _in_scope(s)
    assert actual.cases == 61 and actual.unanswered >= 1
    assert_figures(actual, expected(cases))


@pytest.mark.parametrize("dimension", ["team", "priority", "brand", "platform", "topic"])
def test_figures_per_group_equal_the_case_by_case_computation(settings, session, mixed, dimension):
    scope = Scope(start=T0, end=T0 + timedelta(days=1), now=NOW)
    with session_scope(settings) as s:
        actual = figures_by(session=s, scope=scope, sla_seconds=SLA, dimension=dimension)
        cases = _in_scope(s)
        teams = {t.id: t.name for t in s.execute(select(Team)).scalars()}
        handles = {a.id: a.handle for a in s.execute(select(Account)).scalars()}
    key = {
        "team": lambda c: teams.get(c.team_id, "(no team)"),
        "priority": lambda c: c.priority,
        "brand": lambda c: handles[c.account_id],
        "platform": lambda c: c.platform,
        "topic": lambda c: c.topic or "other",
    }[dimension]
    groups: dict[str, list[Case]] = {}
    for c in cases:
        groups.setdefault(key(c), []).append(c)
    assert set(actual) == set(groups)
    for name, members in groups.items():
        assert_figures(actual[name], expected(members))


def test_an_earlier_now_counts_later_replies_as_not_yet_sent(settings, session, mixed):
    early = T0 + timedelta(hours=12)
    scope = Scope(start=T0, end=T0 + timedelta(days=1), now=early)
    with session_scope(settings) as s:
        actual = total_figures(session=s, scope=scope, sla_seconds=SLA)
        cases = [c for c in _in_scope(s) if c.opened_at <= early]
    assert_figures(actual, expected(cases, now=early))


def test_a_period_without_cases_has_empty_figures(settings, session, mixed):
    scope = Scope(start=T0 - timedelta(days=9), end=T0 - timedelta(days=8), now=NOW)
    with session_scope(settings) as s:
        actual = total_figures(session=s, scope=scope, sla_seconds=SLA)
    assert (actual.cases, actual.p50_s, actual.sla_attainment) == (0, None, None)


def test_unanswered_cases_within_their_sla_are_neither_met_nor_missed(settings, session):
    account = make_account(session)
    for minutes, reply in [(0, 60.0), (10, None), (20, 7200.0)]:
        opened = T0 + timedelta(minutes=minutes)
        root = make_post(session, account, created_at=opened)
        answered = None if reply is None else opened + timedelta(seconds=reply)
        make_case(session, account, root, priority="P2", first_response_at=answered)
    session.commit()
    # At T0 + 1h05: the unanswered case (opened at T0 + 10 min) is 55 minutes old: still pending.
    scope = Scope(start=T0, end=T0 + timedelta(days=1), now=T0 + timedelta(hours=3))
    pending = Scope(start=T0, end=T0 + timedelta(days=1), now=T0 + timedelta(minutes=65))
    with session_scope(settings) as s:
        later = total_figures(session=s, scope=scope, sla_seconds=SLA)
        now = total_figures(session=s, scope=pending, sla_seconds=SLA)
    assert (later.unanswered, later.sla_attainment) == (1, pytest.approx(1 / 3))
    assert (now.answered, now.unanswered, now.sla_attainment) == (1, 2, 1.0)
