"""Live updates: one poller per web process reads new audit events from the database and tells
every open page which cases changed, over server-sent events.

The database is the only channel, so it works the same whatever process made the change (a
worker that opened a case, an agent on another web process) and whichever broker runs. Events
are read by time window, not by id, because on PostgreSQL ids are handed out before commit and
a transaction that commits late can carry a lower id than one already read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from socialcare.cases.models import Event
from socialcare.people.service import still_valid
from socialcare.web.deps import SessionDep
from socialcare.web.security import SESSION_COOKIE, QueueReader

log = logging.getLogger(__name__)
router = APIRouter()

POLL_SECONDS = 0.5
WINDOW = timedelta(seconds=120)  # how late a commit may land and still be seen
KEEPALIVE_SECONDS = 15.0
# A stream ends after this long and the browser reconnects (EventSource does, after `retry`):
# long-lived connections would otherwise hold a web process past its graceful shutdown.
MAX_STREAM_SECONDS = 300.0
LATE_COMMIT = timedelta(seconds=5)  # an event's time is stamped before its commit
# How often an open stream asks whether its login still admits it (and before each change).
RECHECK_SECONDS = 1.0


class ChangeFeed:
    """Polls the events table and fans out {"cases": [...], "kinds": [...]} to subscribers."""

    def __init__(self, maker: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.maker = maker
        self.clock = clock
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.seen: dict[int, datetime] = {}
        self.task: asyncio.Task[None] | None = None
        self.primed = False
        self.started: datetime | None = None

    def _read(self) -> list[tuple[int, int | None, str, datetime]]:
        since = self.clock() - WINDOW
        with self.maker() as session:
            rows = session.execute(
                select(Event.id, Event.case_id, Event.kind, Event.at).where(Event.at >= since)
            ).all()
        return [(r.id, r.case_id, r.kind, r.at) for r in rows]

    async def poll_once(self) -> dict[str, Any] | None:
        rows = await anyio.to_thread.run_sync(self._read)
        fresh = [r for r in rows if r[0] not in self.seen]
        for event_id, _, _, at in fresh:
            self.seen[event_id] = at
        horizon = self.clock() - WINDOW - timedelta(seconds=5)
        for event_id in [i for i, at in self.seen.items() if at < horizon]:
            del self.seen[event_id]
        if not self.primed:
            # What happened well before the feed started is already on the pages (they also
            # catch up when their stream is ready); what happened since, or was stamped just
            # before and committed since, no subscriber has seen yet.
            self.primed = True
            since = (self.started or self.clock()) - LATE_COMMIT
            fresh = [r for r in fresh if r[3] >= since]
        if not fresh:
            return None
        cases = sorted({case_id for _, case_id, _, _ in fresh if case_id is not None})
        kinds = sorted({kind for _, _, kind, _ in fresh})
        return {"cases": cases, "kinds": kinds}

    async def run(self) -> None:
        while self.subscribers:
            try:
                change = await self.poll_once()
            except Exception as exc:  # the database away for a moment: pages keep their view
                log.warning("live feed: %s", exc)
                change = None
            if change is not None:
                for queue in list(self.subscribers):
                    queue.put_nowait(change)
            await asyncio.sleep(POLL_SECONDS)
        self.task = None
        self.primed = False

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.subscribers.add(queue)
        if self.task is None:
            self.started = self.clock()
            self.task = asyncio.create_task(self.run())
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers.discard(queue)


def feed_of(request: Request) -> ChangeFeed:
    app = request.app
    if getattr(app.state, "change_feed", None) is None:
        app.state.change_feed = ChangeFeed(app.state.sessionmaker, lambda: app.state.clock())
    feed: ChangeFeed = app.state.change_feed
    return feed


def _credentials(request: Request) -> tuple[str | None, str | None]:
    """The session cookie and the bearer token this request came with (the token wins, as it
    does when the request is admitted)."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return None, credential.strip()
    return request.cookies.get(SESSION_COOKIE), None


def _admits(request: Request) -> bool:
    """Whether the request's login or token still admits its agent (own short session)."""
    cookie, token = _credentials(request)
    now = request.app.state.clock()
    with request.app.state.sessionmaker() as session:
        return still_valid(session=session, cookie=cookie, token=token, now=now)


async def _still_admitted(request: Request) -> bool:
    try:
        return await anyio.to_thread.run_sync(_admits, request)
    except Exception as exc:  # the database away for a moment: it is asked again soon
        log.warning("live feed: could not check the stream's login: %s", exc)
        return True


async def _stream(request: Request, feed: ChangeFeed) -> AsyncIterator[str]:
    queue = feed.subscribe()
    loop = asyncio.get_running_loop()
    ends = loop.time() + MAX_STREAM_SECONDS
    quiet_since = loop.time()
    try:
        yield "retry: 2000\nevent: ready\ndata: {}\n\n"
        # app.state.closing: the app is shutting down (or a test wants one event only).
        while loop.time() < ends and not getattr(request.app.state, "closing", False):
            # Logging out, a revoked or expired token, a disabled person: the stream ends
            # within RECHECK_SECONDS, and no change is sent once the login no longer admits.
            try:
                change = await asyncio.wait_for(queue.get(), timeout=RECHECK_SECONDS)
            except TimeoutError:
                change = None
            if not await _still_admitted(request):
                yield 'event: end\ndata: {"reason": "logged out"}\n\n'
                break
            if change is not None:
                quiet_since = loop.time()
                yield f"event: change\ndata: {json.dumps(change)}\n\n"
            elif loop.time() - quiet_since >= KEEPALIVE_SECONDS:
                if await request.is_disconnected():
                    break
                quiet_since = loop.time()
                yield ": keep-alive\n\n"
    finally:
        feed.unsubscribe(queue)


@router.get(
    "/api/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "the event stream"}},
)
def stream(request: Request, session: SessionDep, actor: QueueReader) -> StreamingResponse:
    """Server-sent events: `change` with the ids of the cases that changed, as they change;
    `end` when the login or token behind the stream stops admitting it (logout, revocation)."""
    session.close()  # the stream is long: it must not hold a pooled connection
    return StreamingResponse(
        _stream(request, feed_of(request)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
