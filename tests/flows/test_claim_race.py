"""1,000 concurrent claims on PostgreSQL: every case is claimed exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import sessionmaker

from socialcare.cases import actions
from socialcare.cases.models import Case, Event
from socialcare.cases.work import claim_next, get_agent
from socialcare.db import session_scope
from socialcare.errors import Conflict
from socialcare.flows.seed import add_agent
from socialcare.people.models import Agent
from tests.factories import T0, make_account, make_agent, make_case, make_post, make_team

CASES = 1000
THREADS = 8


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_thousand_concurrent_claims_each_win_a_different_case(db_url, engine, settings, session):
    account = make_account(session)
    for i in range(CASES):
        post = make_post(session, account, created_at=T0 + timedelta(seconds=i))
        make_case(session, account, post, priority=("P1", "P2", "P3", "P4")[i % 4])
    for i in range(THREADS):
        add_agent(session=session, handle=f"agent{i}", display_name="a", role="agent", teams=[])
    session.commit()
    won: list[list[int]] = [[] for _ in range(THREADS)]
    attempts = [0] * THREADS
    barrier = threading.Barrier(THREADS)

    def worker(i: int) -> None:
        barrier.wait()
        while sum(attempts) < CASES + 50:
            attempts[i] += 1
            with session_scope(settings) as s:
                case = claim_next(session=s, agent=get_agent(session=s, handle=f"agent{i}"))
                if case is None:
                    return
                won[i].append(case.id)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    claimed = [c for w in won for c in w]
    assert len(claimed) == len(set(claimed)) == CASES
    assert sum(1 for w in won if w) > 1  # the claims really raced
    session.expire_all()
    holders = session.execute(
        select(func.count(func.distinct(Case.claimed_by))).where(Case.status == "claimed")
    ).scalar_one()
    assert holders > 1
    assert (
        session.execute(
            select(func.count()).select_from(Case).where(Case.status == "claimed")
        ).scalar_one()
        == CASES
    )


STORM_CASES = 100
STORM_ATTEMPTS = 1000
STORM_THREADS = 20


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_thousand_mixed_claims_through_the_actions_win_each_case_exactly_once(
    db_url, engine, settings, session
):
    account = make_account(session)
    team = make_team(session, "support")
    case_ids = []
    for i in range(STORM_CASES):
        post = make_post(session, account, created_at=T0 + timedelta(seconds=i))
        case_ids.append(make_case(session, account, post, priority="P2", team=team).id)
    # Half the agents press "next case", half claim cases by id; a claimer never asks for the
    # same case twice, so any case handed back to it is a new win, not its own claim again.
    nexters = [make_agent(session, f"next{i}", role="agent") for i in range(10)]
    claimers = [make_agent(session, f"claim{i}", role="agent") for i in range(10)]
    for agent in nexters + claimers:
        agent.teams = [team]
    session.commit()
    attempts: list[tuple[str, int, int | None]] = []
    for j in range(STORM_ATTEMPTS // 2):
        attempts.append(("next", nexters[j % 10].id, None))
        case = j % STORM_CASES
        attempts.append(("claim", claimers[(j // STORM_CASES + 2 * (case % 5)) % 10].id, case))
    # A pool of its own, so every thread holds a connection at once.
    pool = create_engine(db_url, pool_size=STORM_THREADS, max_overflow=0)
    maker = sessionmaker(pool, expire_on_commit=False)
    gate = threading.Event()

    def attempt(kind: str, agent_id: int, case: int | None) -> tuple[str, str, int | None, int]:
        gate.wait()
        with maker() as s:
            agent = s.get_one(Agent, agent_id)
            try:
                if kind == "next":
                    got = actions.claim_next(session=s, agent=agent, team=None, lease_seconds=900)
                else:
                    got = actions.claim(
                        session=s, agent=agent, case_id=case_ids[case], lease_seconds=900
                    )
            except Conflict:
                s.rollback()
                return kind, "conflict", None, agent_id
            s.commit()
            return kind, ("won" if got is not None else "none"), got and got.id, agent_id

    with ThreadPoolExecutor(STORM_THREADS) as executor:
        futures = [executor.submit(attempt, *a) for a in attempts]
        gate.set()
        outcomes = [f.result(timeout=120) for f in futures]  # any other error fails here
    pool.dispose()

    wins = {(case_id, agent_id) for _, result, case_id, agent_id in outcomes if result == "won"}
    assert sorted(c for c, _ in wins) == sorted(case_ids)  # every case, each exactly once
    assert {(k, r) for k, r, _, _ in outcomes} <= {
        ("next", "won"),
        ("next", "none"),
        ("claim", "won"),
        ("claim", "conflict"),
    }
    won_by = Counter(k for k, r, _, _ in outcomes if r == "won")
    assert won_by["next"] > 0 and won_by["claim"] > 0  # both ways of claiming really raced
    assert sum(1 for _, r, _, _ in outcomes if r != "won") == STORM_ATTEMPTS - STORM_CASES
    session.expire_all()
    held = session.execute(select(Case.id, Case.claimed_by).where(Case.status == "claimed"))
    assert dict(held.tuples().all()) == dict(wins)
    claimed_events = session.execute(
        select(Event.case_id, func.count()).where(Event.kind == "claimed").group_by(Event.case_id)
    ).all()
    assert sorted(tuple(row) for row in claimed_events) == [(c, 1) for c in sorted(case_ids)]
