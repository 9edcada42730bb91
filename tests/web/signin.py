"""Signing test clients in: through the real login form, or with a real API token."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from socialcare.auth.passwords import hash_password
from socialcare.people.models import Agent
from socialcare.people.service import create_token
from tests.factories import make_agent

PASSWORD = "correct horse battery staple"
_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def person(session: Session, handle: str, role: str = "agent", **fields: object) -> Agent:
    """An agent who can log in with PASSWORD (committed)."""
    existing = session.query(Agent).filter_by(handle=handle).one_or_none()
    agent = existing or make_agent(session, handle, role=role, **fields)
    agent.password_hash = hash_password(PASSWORD)
    session.commit()
    return agent


def log_in(client: TestClient, handle: str, password: str = PASSWORD) -> str:
    """Log the client in through the form; returns the session's CSRF token."""
    page = client.get("/login")
    field = _FIELD.search(page.text)
    assert field is not None, "the login form has a CSRF field"
    response = client.post(
        "/login",
        data={"handle": handle, "password": password, "csrf_token": field.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client)


def csrf_of(client: TestClient) -> str:
    """The CSRF token a logged-in page carries."""
    page = client.get("/account")
    meta = _META.search(page.text)
    assert meta is not None, "a logged-in page carries the CSRF token"
    return meta.group(1)


def sign_in(client: TestClient, session: Session, handle: str = "lead", role: str = "lead") -> str:
    """Create the person and log the client in; returns the CSRF token, also set as the
    client's default X-CSRF-Token header."""
    person(session, handle, role)
    token = log_in(client, handle)
    client.headers["X-CSRF-Token"] = token
    return token


def bearer(session: Session, handle: str = "scraper", role: str = "lead") -> dict[str, str]:
    """Authorization headers with a fresh API token of a new person."""
    agent = make_agent(session, handle, role=role)
    secret, _ = create_token(session=session, agent=agent, name="tests", actor="tests")
    session.commit()
    return {"Authorization": f"Bearer {secret}"}
