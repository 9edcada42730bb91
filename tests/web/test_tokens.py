"""API tokens: made from a logged-in session only (never with a token), valid for a term that
is set at creation, shown and enforced, and managed by admins for everyone, on both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.db import utcnow
from socialcare.people.models import ApiToken
from socialcare.people.service import TOKEN_TTL, create_token
from socialcare.web import create_app
from tests.web.signin import log_in, sign_in


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(settings: Settings, engine: object, clock: Clock) -> FastAPI:
    return create_app(settings, clock=clock, enqueue=lambda *args: None)


@pytest.fixture
def browser(app: FastAPI, session: Session) -> Iterator[TestClient]:
    """An agent logged in through the form (the client sends the session's CSRF token)."""
    with TestClient(app) as client:
        sign_in(client, session, "ann", "agent")
        yield client


def tokens(session: Session) -> int:
    session.expire_all()
    count = session.scalar(select(func.count()).select_from(ApiToken))
    session.rollback()
    return int(count or 0)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_a_token_cannot_make_tokens_so_revoking_it_leaves_none_behind(
    app: FastAPI, browser: TestClient, session: Session
) -> None:
    made = browser.post("/api/tokens", json={"name": "script"})
    assert made.status_code == 201, made.text
    secret = made.json()["token"]
    with TestClient(app) as script:
        refused = script.post("/api/tokens", json={"name": "child"}, headers=bearer(secret))
        assert refused.status_code == 403 and "session" in refused.json()["detail"]
        assert tokens(session) == 1
        gone = browser.delete(f"/api/tokens/{made.json()['id']}")
        assert gone.status_code == 204
        assert script.get("/api/me", headers=bearer(secret)).status_code == 401


def test_a_token_lasts_its_term_and_not_a_moment_longer(
    app: FastAPI, browser: TestClient, session: Session, clock: Clock
) -> None:
    default = browser.post("/api/tokens", json={"name": "default"}).json()
    week = browser.post("/api/tokens", json={"name": "week", "expires_in_days": 7}).json()
    for days in (0, 366, "ever"):
        bad = browser.post("/api/tokens", json={"name": "bad", "expires_in_days": days})
        assert bad.status_code == 422, bad.text
    assert tokens(session) == 2
    created = clock.now
    assert datetime.fromisoformat(default["expires_at"]) == created + TOKEN_TTL
    assert datetime.fromisoformat(week["expires_at"]) == created + timedelta(days=7)
    listed = {t["name"]: t["expires_at"] for t in browser.get("/api/tokens").json()}
    assert listed == {"default": default["expires_at"], "week": week["expires_at"]}
    page = browser.get("/account").text
    assert (created + timedelta(days=7)).strftime("%Y-%m-%d %H:%M:%S UTC") in page
    with TestClient(app) as script:
        clock.now = created + timedelta(days=7) - timedelta(seconds=1)
        assert script.get("/api/me", headers=bearer(week["token"])).status_code == 200
        clock.now = created + timedelta(days=7)
        assert script.get("/api/me", headers=bearer(week["token"])).status_code == 401
        assert script.get("/api/me", headers=bearer(default["token"])).status_code == 200
        clock.now = created + TOKEN_TTL
        assert script.get("/api/me", headers=bearer(default["token"])).status_code == 401
    log_in(browser, "ann")  # the session itself ran out meanwhile
    states = re.findall(r"<td>(active|expired|revoked)</td>", browser.get("/account").text)
    assert states == ["expired", "expired"]


def test_admins_list_and_revoke_everyones_tokens_and_nobody_else_sees_them(
    app: FastAPI, browser: TestClient, session: Session
) -> None:
    ann_token = browser.post("/api/tokens", json={"name": "ann's script"}).json()
    with TestClient(app) as lead, TestClient(app) as admin:
        sign_in(lead, session, "lee", "lead")
        sign_in(admin, session, "root", "admin")
        lee_token = lead.post("/api/tokens", json={"name": "lee's report"}).json()
        for client in (browser, lead):
            assert client.get("/api/tokens?everyone=true").status_code == 403
            assert "Everyone's tokens" not in client.get("/account").text
            mine = client.get("/api/tokens").json()
            assert len(mine) == 1 and mine[0]["agent"] in ("ann", "lee")
        # Someone else's token is not even admitted to exist for a non-admin.
        assert browser.delete(f"/api/tokens/{lee_token['id']}").status_code == 404
        everyone = admin.get("/api/tokens?everyone=true").json()
        assert {(t["agent"], t["name"]) for t in everyone} == {
            ("ann", "ann's script"),
            ("lee", "lee's report"),
        }
        assert admin.get("/api/tokens").json() == []  # by default: one's own
        page = admin.get("/account").text
        assert "Everyone&#39;s tokens" in page or "Everyone's tokens" in page
        assert "ann&#39;s script" in page and f'data-delete="/api/tokens/{ann_token["id"]}"' in page
        assert admin.delete(f"/api/tokens/{ann_token['id']}").status_code == 204
        with TestClient(app) as script:
            assert script.get("/api/me", headers=bearer(ann_token["token"])).status_code == 401
            assert script.get("/api/me", headers=bearer(lee_token["token"])).status_code == 200
        revoked = {t["name"]: t["revoked_at"] for t in admin.get("/api/tokens?everyone=1").json()}
        assert revoked["ann's script"] is not None and revoked["lee's report"] is None


def test_a_token_made_on_the_command_line_expires_too(session: Session, app: FastAPI) -> None:
    from tests.factories import make_agent

    agent = make_agent(session, "cli-user", role="agent")
    now = utcnow()
    secret, row = create_token(session=session, agent=agent, name="cron", actor="cli", now=now)
    session.commit()
    assert row.expires_at == now + TOKEN_TTL
    with pytest.raises(ValueError, match="1 to 365 days"):
        create_token(session=session, agent=agent, name="x", actor="cli", expires_in=timedelta(0))
    with TestClient(app) as script:
        assert script.get("/api/me", headers=bearer(secret)).status_code == 200
