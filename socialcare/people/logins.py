"""Logging in: the password check with its lockout, and the browser sessions it starts (only
a hash of each session's secret is stored). People themselves: socialcare.people.service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, literal, or_, update
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session

from socialcare.auth.passwords import (
    digest,
    hash_password,
    needs_rehash,
    new_secret,
    verify_password,
)
from socialcare.cases.events import WEB, record
from socialcare.db import UTCDateTime
from socialcare.errors import LoginFailed
from socialcare.people.models import Agent, WebSession
from socialcare.people.service import TOUCH_EVERY, agent_by_handle


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    session_ttl: timedelta = timedelta(hours=12)


def authenticate(
    *, session: Session, handle: str, password: str, now: datetime, policy: LoginPolicy
) -> Agent:
    """The agent whose handle and password these are; LoginFailed otherwise.

    max_failures consecutive failures lock the account for policy.lockout; while locked even
    the right password fails (locked=True), so guessing cannot go on in the background. The
    count and the lock move in one UPDATE each, so parallel guesses cannot lose a failure."""
    agent = agent_by_handle(session=session, handle=handle)
    ok = verify_password(agent.password_hash if agent else None, password)
    if agent is None or not agent.active:
        raise LoginFailed()
    if not ok:
        if _count_failure(session, agent, now=now, policy=policy):
            raise LoginFailed()
        record(session, actor=f"agent:{agent.handle}", kind="login_refused_locked")
        raise LoginFailed(locked=True)  # the same answer as any failure: handles stay hidden
    admitted = session.execute(
        update(Agent)
        .where(Agent.id == agent.id, _unlocked(now))
        .values(failed_logins=0, locked_until=None, last_login_at=now)
        .returning(Agent.id)
        .execution_options(synchronize_session=False)
    ).first()
    session.expire(agent, ["failed_logins", "locked_until", "last_login_at"])
    if admitted is None:
        record(session, actor=f"agent:{agent.handle}", kind="login_refused_locked")
        raise LoginFailed(locked=True)
    if agent.password_hash and needs_rehash(agent.password_hash):
        agent.password_hash = hash_password(password)
    record(session, actor=f"agent:{agent.handle}", kind="login")
    return agent


def _unlocked(now: datetime) -> ColumnElement[bool]:
    return or_(Agent.locked_until.is_(None), Agent.locked_until <= now)


def _count_failure(session: Session, agent: Agent, *, now: datetime, policy: LoginPolicy) -> bool:
    """Count one wrong password, locking the account when it reaches policy.max_failures, as
    one statement (the row's own values, so parallel failures each count); False when the
    account was already locked."""
    reached = Agent.failed_logins + 1 >= policy.max_failures
    until = literal(now + policy.lockout, UTCDateTime())
    row = session.execute(
        update(Agent)
        .where(Agent.id == agent.id, _unlocked(now))
        .values(
            failed_logins=sql_case((reached, 0), else_=Agent.failed_logins + 1),
            locked_until=sql_case((reached, until), else_=Agent.locked_until),
        )
        .returning(Agent.locked_until)
        .execution_options(synchronize_session=False)
    ).first()
    session.expire(agent, ["failed_logins", "locked_until"])
    if row is None:
        return False
    if row.locked_until is not None and row.locked_until > now:  # this failure locked it
        record(session, actor=WEB, kind="login_locked", handle=agent.handle)
    return True


def start_session(
    *, session: Session, agent: Agent, now: datetime, policy: LoginPolicy
) -> tuple[str, WebSession]:
    """A new login session; returns the cookie secret (shown once) and the row."""
    secret = new_secret()
    row = WebSession(
        id=digest(secret),
        agent_id=agent.id,
        csrf_token=new_secret(),
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.session_ttl,
    )
    session.add(row)
    session.flush()
    return secret, row


def session_agent(
    *, session: Session, secret: str, now: datetime, policy: LoginPolicy
) -> tuple[Agent, WebSession] | None:
    """The active agent behind a cookie secret and its session (renewed: it slides), or None."""
    row = session.get(WebSession, digest(secret))
    if row is None or row.expires_at <= now:
        return None
    agent = session.get(Agent, row.agent_id)
    if agent is None or not agent.active:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        row.expires_at = now + policy.session_ttl
    return agent, row


def end_session(*, session: Session, secret: str) -> None:
    """Log out: the session row goes, so the cookie is worthless even if kept."""
    session.execute(delete(WebSession).where(WebSession.id == digest(secret)))


def purge_expired_sessions(*, session: Session, now: datetime) -> int:
    """Delete sessions past their expiry; returns how many."""
    result = session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)
