"""The live feed behind /api/stream: which audit events it passes on to the open pages."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.db import get_sessionmaker, session_scope, utcnow
from socialcare.web.live import ChangeFeed
from tests.factories import make_account, make_case, make_event, make_post


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
