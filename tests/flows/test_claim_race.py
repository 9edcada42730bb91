"""1,000 concurrent claims on PostgreSQL: every case is claimed exactly once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from socialcare.cases.models import Case
from socialcare.cases.work import claim_next, get_agent
from socialcare.db import session_scope
from socialcare.setup import add_agent
from tests.factories import T0, make_account, make_case, make_post

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
