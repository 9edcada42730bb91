"""The live feed behind /api/stream: which audit events it passes on to the open pages, and
that an open stream ends once the login or token behind it stops admitting it."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.db import get_sessionmaker, session_scope, utcnow
from socialcare.web import create_app, live
from socialcare.web.live import ChangeFeed
from tests.factories import make_account, make_case, make_event, make_post
from tests.web.signin import sign_in


def test_a_change_made_as_the_feed_starts_is_passed_on_and_older_ones_are_not(
    settings: Settings, engine: object, session: Session
) -> None:
    acme = make_account(session, "acme")
    old, new = (make_case(session, acme, make_post(session, acme, text)) for text in ("a", "b"))
    make_event(session, old, "claimed", at=utcnow() - timedelta(minutes=1))
    session.commit()
    feed = ChangeFeed(get_sessionmaker(settings), utcnow)

    async def first_change() -> dict[str, Any]:
        queue = feed.subscribe()  # the feed starts; its first poll has not run yet
        with session_scope(settings) as s:
            make_event(s, s.merge(new), "claimed", actor="agent:ana")
        try:
            return await asyncio.wait_for(queue.get(), timeout=5)
        finally:
            feed.unsubscribe(queue)

    with ThreadPoolExecutor(1) as pool:  # a loop of its own (Playwright's may run in this one)
        change = pool.submit(asyncio.run, first_change()).result()
    assert change == {"cases": [new.id], "kinds": ["claimed"]}


@pytest.mark.parametrize("how", ["logout", "token revoked", "person disabled"])
def test_an_open_stream_ends_within_seconds_once_its_login_no_longer_admits_it(
    settings: Settings, engine: object, session: Session, how: str
) -> None:
    app = create_app(settings, enqueue=lambda *args: None)
    desk = TestClient(app)  # the agent's browser: logs in, later logs out or revokes
    csrf = sign_in(desk, session, "ann", "agent")
    admin = TestClient(app)
    sign_in(admin, session, "root", "admin")
    headers: dict[str, str] = {}
    if how == "token revoked":
        made = desk.post("/api/tokens", json={"name": "wallboard"}).json()
        headers = {"Authorization": f"Bearer {made['token']}"}
    stream = TestClient(app, cookies={} if headers else {"sc_session": desk.cookies["sc_session"]})
    seen: dict[str, Any] = {}

    def listen() -> None:
        response = stream.get("/api/stream", headers=headers)  # whole, once the stream ends
        seen.update(status=response.status_code, text=response.text, ended=time.monotonic())

    listener = threading.Thread(target=listen)
    listener.start()
    deadline = time.monotonic() + 20
    while not (app.state.change_feed and app.state.change_feed.subscribers):
        assert time.monotonic() < deadline and listener.is_alive(), "the stream never opened"
        time.sleep(0.05)
    time.sleep(1.5)  # open and checked at least once: still admitted
    assert listener.is_alive()
    if how == "logout":
        done = desk.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert done.status_code == 303
    elif how == "token revoked":
        assert desk.delete(f"/api/tokens/{made['id']}").status_code == 204
    else:
        assert admin.post("/api/agents/ann/disable").status_code == 200
    cut = time.monotonic()
    listener.join(timeout=10)
    assert not listener.is_alive(), "the stream went on after its login ended"
    assert seen["status"] == 200
    assert seen["ended"] - cut < live.RECHECK_SECONDS + 2
    assert seen["text"].startswith("retry: 2000\nevent: ready")
    assert seen["text"].rstrip().endswith('event: end\ndata: {"reason": "logged out"}')
    assert stream.get("/api/stream", headers=headers).status_code == 401
