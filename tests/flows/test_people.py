"""People and their credentials through socialcare.people.service, on both databases: the first
admin, generated passwords, handles, and API tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from socialcare.auth.passwords import MIN_PASSWORD_LENGTH
from socialcare.db import utcnow
from socialcare.errors import Conflict, LoginFailed, NotFound
from socialcare.people.logins import LoginPolicy, authenticate
from socialcare.people.models import Agent
from socialcare.people.service import (
    add_agent,
    create_token,
    ensure_first_admin,
    revoke_token,
    set_active,
    token_agent,
)

POLICY = LoginPolicy(max_failures=3, lockout=timedelta(minutes=5))


def admins(session: Session) -> int:
    query = select(func.count()).select_from(Agent).where(Agent.role == "admin")
    return int(session.scalar(query) or 0)


def test_the_first_start_creates_one_admin_with_a_generated_password_once(
    session: Session,
) -> None:
    created = ensure_first_admin(session=session)
    assert created is not None
    handle, password = created
    assert handle == "admin" and len(password) >= MIN_PASSWORD_LENGTH
    agent = authenticate(
        session=session, handle=handle, password=password, now=utcnow(), policy=POLICY
    )
    assert agent.role == "admin"
    assert ensure_first_admin(session=session) is None  # the second start prints nothing
    assert admins(session) == 1


def test_no_two_first_starts_share_a_password(session: Session) -> None:
    first = ensure_first_admin(session=session)
    assert first is not None
    # Nobody can administer any more: the next start hands out a new password, not a known one.
    set_active(session=session, agent=session.scalars(select(Agent)).one(), active=False, actor="t")
    second = ensure_first_admin(session=session)
    assert second is not None and second[1] != first[1]
    with pytest.raises(LoginFailed):
        authenticate(
            session=session, handle="admin", password=first[1], now=utcnow(), policy=POLICY
        )
    assert admins(session) == 1


def test_an_existing_admin_means_no_admin_account_is_made(session: Session) -> None:
    add_agent(session=session, handle="boss", role="admin", password="a long password")
    assert ensure_first_admin(session=session) is None
    assert session.scalar(select(Agent).where(Agent.handle == "admin")) is None


def test_a_plain_agent_called_admin_is_promoted_with_a_fresh_password(session: Session) -> None:
    add_agent(session=session, handle="admin", role="agent", password="the old password")
    created = ensure_first_admin(session=session)
    assert created is not None and created[1] != "the old password"
    assert session.scalars(select(Agent.role).where(Agent.handle == "admin")).one() == "admin"


def test_a_person_without_a_password_gets_a_generated_one_shown_once(session: Session) -> None:
    agent, generated = add_agent(session=session, handle="Ann.Lee", teams=[])
    assert agent.handle == "ann.lee" and generated is not None
    assert agent.password_hash is not None and generated not in agent.password_hash
    _, given = add_agent(session=session, handle="bob", password="bob's own password")
    assert given is None
    with pytest.raises(Conflict):
        add_agent(session=session, handle="ANN.LEE")
    for bad in ("", "-dash", "has space", "x" * 65, "émile"):
        with pytest.raises(ValueError):
            add_agent(session=session, handle=bad)
    with pytest.raises(ValueError):
        add_agent(session=session, handle="carol", password="short")
    with pytest.raises(NotFound):
        add_agent(session=session, handle="dave", teams=["no-such-team"])


def test_handles_log_in_whatever_their_case_and_padding(session: Session) -> None:
    add_agent(session=session, handle="ann", password="ann's long password")
    agent = authenticate(
        session=session,
        handle="  ANN ",
        password="ann's long password",
        now=utcnow(),
        policy=POLICY,
    )
    assert agent.handle == "ann" and agent.last_login_at is not None


def test_a_token_acts_as_its_agent_until_revoked_by_them_or_an_admin(session: Session) -> None:
    ann, _ = add_agent(session=session, handle="ann", password="ann's long password")
    bob, _ = add_agent(session=session, handle="bob", password="bob's long password")
    root, _ = add_agent(session=session, handle="root", role="admin", password="root password")
    secret, row = create_token(session=session, agent=ann, name="script", actor="tests")
    assert row.token_hash != secret and secret.startswith(row.prefix)
    now = utcnow()
    assert token_agent(session=session, secret=secret, now=now) is ann
    assert token_agent(session=session, secret=secret + "x", now=now) is None
    assert token_agent(session=session, secret=secret.removeprefix("sc_"), now=now) is None
    with pytest.raises(NotFound):  # someone else's token is not even admitted to exist
        revoke_token(session=session, token_id=row.id, by=bob, may_manage=False)
    assert token_agent(session=session, secret=secret, now=now) is ann
    revoke_token(session=session, token_id=row.id, by=root, may_manage=True)
    assert token_agent(session=session, secret=secret, now=now) is None
    with pytest.raises(ValueError):
        create_token(session=session, agent=ann, name="  ", actor="tests")
