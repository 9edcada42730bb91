"""Sentiment recovery after the first response, per team and agent, against plain Python."""

from __future__ import annotations

import random
import statistics
from datetime import timedelta

import pytest

from socialcare.db import session_scope
from socialcare.metrics.figures import Scope
from socialcare.metrics.recovery import ON_PLATFORM, sentiment_recovery
from tests.factories import (
    T0,
    make_account,
    make_agent,
    make_case,
    make_post,
    make_reply,
    make_score,
    make_team,
)

NOW = T0 + timedelta(days=3)


def _probs(rng: random.Random) -> dict[str, float]:
    neg = rng.random()
    pos = rng.random() * (1 - neg)
    return {"negative": neg, "neutral": 1 - neg - pos, "positive": pos}


@pytest.fixture
def threads(session):
    """Thirty cases: customer posts before and after the first response (some only before),
    answered by one of two agents from here or natively on the platform; returns what Python
    needs to compute the expectations."""
    rng = random.Random(5)
    account = make_account(session)
    teams = [make_team(session, "swat"), make_team(session, "care")]
    agents = [make_agent(session, "ana"), make_agent(session, "ben")]
    rows = []
    for i in range(30):
        opened = T0 + timedelta(minutes=30 * i)
        answered = opened + timedelta(minutes=20)
        root = make_post(session, account, created_at=opened)
        team = teams[i % 2]
        case = make_case(session, account, root, team=team, first_response_at=answered)
        values_before, values_after = [], []
        p = _probs(rng)
        make_score(session, root, probabilities=p)
        values_before.append(p["positive"] - p["negative"])
        author = root.author_handle
        for k in range(rng.randint(0, 3)):
            at = opened + timedelta(minutes=5 + 10 * k)  # 5, 15 before; 25 after the answer
            post = make_post(
                session,
                account,
                created_at=at,
                author_handle=author,
                case=case,
                author_external_id=root.author_external_id,
            )
            p = _probs(rng)
            make_score(session, post, probabilities=p)
            (values_before if at <= answered else values_after).append(
                p["positive"] - p["negative"]
            )
        if i % 5 == 4:
            agent = None  # answered natively on the platform
        else:
            agent = agents[i % 3 % 2]
            # A failed attempt by the other agent first: only sent replies count.
            make_reply(session, case, agent_id=agents[1 - i % 3 % 2].id, state="failed")
            make_reply(session, case, agent_id=agent.id, state="sent", sent_at=answered)
        rows.append(
            (team.name, agent.handle if agent else ON_PLATFORM, values_before, values_after)
        )
    session.commit()
    return rows


def _expected(rows, key):
    groups: dict[str, list[tuple[float, float]]] = {}
    for team, agent, before, after in rows:
        if before and after:
            name = team if key == "team" else agent
            groups.setdefault(name, []).append((statistics.fmean(before), statistics.fmean(after)))
    return {
        name: (len(v), statistics.fmean(b for b, _ in v), statistics.fmean(a for _, a in v))
        for name, v in groups.items()
    }


@pytest.mark.parametrize("by", ["team", "agent"])
def test_recovery_equals_the_thread_by_thread_computation(settings, session, threads, by):
    scope = Scope(T0, T0 + timedelta(days=1), NOW)
    with session_scope(settings) as s:
        found = sentiment_recovery(session=s, scope=scope, by=by)
    want = _expected(threads, by)
    assert want and {r.name for r in found} == set(want)
    for r in found:
        n, before, after = want[r.name]
        assert r.cases == n
        assert r.before == pytest.approx(before, abs=1e-4)
        assert r.after == pytest.approx(after, abs=1e-4)
        assert r.change == pytest.approx(after - before, abs=1e-4)


def test_cases_not_answered_by_now_do_not_count(settings, session, threads):
    scope = Scope(T0, T0 + timedelta(days=1), T0 + timedelta(minutes=10))
    with session_scope(settings) as s:
        assert sentiment_recovery(session=s, scope=scope, by="team") == []
