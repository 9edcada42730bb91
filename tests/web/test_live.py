"""The live feed: every committed event reaches the pages once, even one that commits late."""

from __future__ import annotations

import asyncio
import concurrent.futures
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from socialcare.cases.models import Event
from socialcare.db import utcnow
from socialcare.web.live import WINDOW, ChangeFeed


def run(scenario):
    """Run a coroutine function on an event loop of its own thread: the browser tests' Playwright
    keeps a loop in the main thread for the whole session."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, scenario()).result()


def _event(session: Session, case_id: int, kind: str, at=None) -> int:
    event = Event(actor="worker", kind=kind, case_id=case_id, data={}, at=at or utcnow())
    session.add(event)
    session.commit()
    return event.id


def test_the_feed_reports_new_events_once_and_not_what_came_before_it(engine, session):
    feed = ChangeFeed(sessionmaker(engine), utcnow)
    _event(session, 1, "case_opened", at=utcnow() - timedelta(minutes=1))

    async def scenario():
        assert await feed.poll_once() is None  # priming: the pages already show case 1
        assert await feed.poll_once() is None  # nothing new
        _event(session, 2, "claimed")
        _event(session, 3, "reply_sent")
        first = await feed.poll_once()
        again = await feed.poll_once()
        return first, again

    first, again = run(scenario)
    assert first == {"cases": [2, 3], "kinds": ["claimed", "reply_sent"]}
    assert again is None


def test_an_event_that_commits_late_with_an_earlier_time_is_still_reported(engine, session):
    feed = ChangeFeed(sessionmaker(engine), utcnow)

    async def scenario():
        await feed.poll_once()
        _event(session, 7, "claimed")
        assert (await feed.poll_once())["cases"] == [7]
        # A transaction that began a minute ago commits only now: its event's time (and, on
        # PostgreSQL, its id) is older than what was already read.
        _event(session, 8, "case_opened", at=utcnow() - WINDOW / 2)
        return await feed.poll_once()

    assert run(scenario) == {"cases": [8], "kinds": ["case_opened"]}


def test_subscribers_each_get_the_change_and_the_poller_stops_without_them(engine, session):
    feed = ChangeFeed(sessionmaker(engine), utcnow)

    async def scenario():
        a, b = feed.subscribe(), feed.subscribe()
        await asyncio.sleep(0.7)  # the poller primes itself
        _event(session, 5, "claimed")
        got = await asyncio.wait_for(a.get(), 5), await asyncio.wait_for(b.get(), 5)
        feed.unsubscribe(a)
        feed.unsubscribe(b)
        await asyncio.sleep(1.2)
        return got, feed.task

    (got_a, got_b), task = run(scenario)
    assert got_a == got_b == {"cases": [5], "kinds": ["claimed"]}
    assert task is None


def test_events_older_than_the_window_are_forgotten(engine, session):
    now = [utcnow()]
    feed = ChangeFeed(sessionmaker(engine), lambda: now[0])

    async def scenario():
        await feed.poll_once()
        _event(session, 9, "claimed", at=now[0])
        await feed.poll_once()
        assert len(feed.seen) == 1
        now[0] += WINDOW + timedelta(seconds=30)
        await feed.poll_once()
        return len(feed.seen)

    assert run(scenario) == 0
