"""Wrong passwords tried in parallel, each on a connection of its own, on both databases: every
failure counts, the account locks at the threshold exactly once, and the right password is
refused until the lockout ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from socialcare.cases.models import Event
from socialcare.config import Settings
from socialcare.db import make_engine, utcnow
from socialcare.errors import LoginFailed
from socialcare.people.logins import LoginPolicy, authenticate
from socialcare.people.models import Agent
from tests.factories import make_agent

PASSWORD = "the right password, at last"
GUESSES = 40
POLICY = LoginPolicy(max_failures=5, lockout=timedelta(minutes=15))
# A real Argon2id hash with light parameters: 40 verifications at once, each on its own thread,
# would otherwise need 40 x 64 MiB.
LIGHT = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def own_connections(settings: Settings, engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions that each hold a connection of their own (as many as there are guesses)."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        parallel = make_engine(url)
    else:
        parallel = create_engine(url, pool_size=GUESSES + 2, max_overflow=0)
    yield sessionmaker(parallel, expire_on_commit=False)
    parallel.dispose()


def attempt(maker: sessionmaker[Session], password: str, now: datetime) -> str:
    with maker() as session:
        try:
            authenticate(session=session, handle="alice", password=password, now=now, policy=POLICY)
        except LoginFailed as exc:
            session.commit()  # as the login page does: the count and the lock must stick
            return "locked" if exc.locked else "refused"
        session.commit()
        return "in"


def test_parallel_wrong_passwords_each_count_and_lock_the_account_once(
    session: Session, own_connections: sessionmaker[Session]
) -> None:
    make_agent(session, "alice", password_hash=LIGHT.hash(PASSWORD))
    session.commit()
    now = utcnow()
    start = threading.Barrier(GUESSES)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def guess(n: int) -> None:
        try:
            start.wait(timeout=60)
            outcomes.append(attempt(own_connections, f"wrong guess {n}", now))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(GUESSES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    # Five failures counted (the fifth locks); every later guess met the lock.
    assert sorted(outcomes) == ["locked"] * (GUESSES - 5) + ["refused"] * 5
    session.expire_all()
    alice = session.scalars(select(Agent).where(Agent.handle == "alice")).one()
    assert alice.locked_until == now + POLICY.lockout and alice.failed_logins == 0
    kinds = session.scalars(select(Event.kind).where(Event.kind.like("login%"))).all()
    assert kinds.count("login_locked") == 1
    assert kinds.count("login_refused_locked") == GUESSES - 5
    session.rollback()

    assert attempt(own_connections, PASSWORD, now + timedelta(minutes=14)) == "locked"
    assert attempt(own_connections, PASSWORD, now + POLICY.lockout) == "in"
    session.expire_all()
    assert session.scalars(select(Agent.failed_logins).where(Agent.handle == "alice")).one() == 0


def test_a_right_password_racing_wrong_ones_never_slips_past_a_lock(
    session: Session, own_connections: sessionmaker[Session]
) -> None:
    make_agent(session, "alice", password_hash=LIGHT.hash(PASSWORD), failed_logins=4)
    session.commit()
    now = utcnow()
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def go(label: str, password: str) -> None:
        start.wait(timeout=60)
        outcomes[label] = attempt(own_connections, password, now)

    threads = [
        threading.Thread(target=go, args=("wrong", "a wrong one")),
        threading.Thread(target=go, args=("right", PASSWORD)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    session.expire_all()
    alice = session.scalars(select(Agent).where(Agent.handle == "alice")).one()
    # Whichever ran first decides: the wrong one locks (and the right one meets the lock), or
    # the right one logs in and resets the count (and the wrong one counts once).
    if outcomes["right"] == "in":
        assert outcomes["wrong"] == "refused"
        assert (alice.failed_logins, alice.locked_until) == (1, None)
    else:
        assert outcomes == {"wrong": "refused", "right": "locked"}
        assert alice.locked_until == now + POLICY.lockout
