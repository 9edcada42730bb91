"""The server side of the browser tests: the real web app under uvicorn on a free port over a
migrated database, and a worker thread that sends the replies the app enqueues through the real
flows, to the X stand-in."""

from __future__ import annotations

import functools
import queue
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare import flows
from socialcare.auth.passwords import hash_password
from socialcare.cases.models import Case, Reply
from socialcare.config import BUNDLED_TWCS, Settings
from socialcare.db import get_sessionmaker, utcnow
from socialcare.migrations import upgrade
from socialcare.people.models import Agent, Team
from socialcare.posts.models import Account
from socialcare.web import create_app
from tests.factories import (
    make_account,
    make_agent,
    make_case,
    make_post,
    make_score,
    make_team,
)
from tests.standins.x_api import XStandIn
from tests.web.signin import PASSWORD

BRAND = "AcmeCare"
BRAND_ID = "1500000000"  # the stand-in's brand user
STANDIN_CSV = BUNDLED_TWCS


def standin() -> XStandIn:
    """The X stand-in with a few dozen customer mentions published."""
    api = XStandIn(STANDIN_CSV, brand=BRAND, mentions=60, customers=40)
    api.release(60)
    api.start()
    return api


class Worker:
    """Runs the steps the app enqueues, in a thread, as a Celery worker would. Each message is
    delivered twice (a broker may redeliver), and none runs while `hold` is cleared."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.inbox: queue.Queue[tuple[str, tuple[Any, ...]] | None] = queue.Queue()
        self.hold = threading.Event()
        self.hold.set()
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self._run, name="outbox-worker", daemon=True)
        self.thread.start()

    def __call__(self, step: str, *args: Any) -> None:
        self.inbox.put((step, args))
        self.inbox.put((step, args))

    def _run(self) -> None:
        while (item := self.inbox.get()) is not None:
            self.hold.wait()
            step, args = item
            try:
                flows.STEPS[step](*args, enqueue=self, settings=self.settings)
            except Exception:
                self.failures.append(traceback.format_exc())
            finally:
                self.inbox.task_done()  # inbox.join() waits until every message has run

    def stop(self) -> None:
        self.hold.set()
        self.inbox.put(None)
        self.thread.join(timeout=10)


@dataclass
class Site:
    """The running web app and what the tests reach it by."""

    url: str
    settings: Settings
    worker: Worker
    server: uvicorn.Server
    thread: threading.Thread
    account_id: int = 0
    seq: Iterator[int] = field(default_factory=lambda: iter(range(1, 1_000_000)))

    @contextmanager
    def session(self) -> Iterator[Session]:
        s = get_sessionmaker(self.settings)()
        try:
            yield s
        finally:
            s.close()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.worker.stop()


def start_site(database_url: str, data_dir: Path, api: XStandIn) -> Site:
    """Migrate the database, then serve the app on 127.0.0.1 on a free port."""
    settings = Settings.model_validate(
        {
            "DATABASE_URL": database_url,
            "SOCIALCARE_DATA_DIR": str(data_dir),
            "REDIS_URL": "",
            "BROKER_URL": "",
            "SENTRY_DSN": "",
            "SESSION_COOKIE_SECURE": "false",
            "X_BEARER_TOKEN": "bearer-test",
            "X_API_KEY": "key-test",
            "X_API_SECRET": "secret-test",
            "X_ACCESS_TOKEN": "token-test",
            "X_ACCESS_TOKEN_SECRET": "token-secret-test",
            "X_BRAND_HANDLE": BRAND,
            "X_API_BASE_URL": api.base_url,
            "HTTP_TIMEOUT_SECONDS": "5",
        }
    )
    upgrade(settings)
    worker = Worker(settings)
    app = create_app(settings, enqueue=worker)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web app did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    site = Site(f"http://127.0.0.1:{port}", settings, worker, server, thread)
    with site.session() as s:
        account = make_account(s, BRAND, platform="x", source="x", external_id=BRAND_ID)
        s.commit()
        site.account_id = account.id
    return site


def team_of(s: Session, name: str) -> Team:
    found = s.scalar(select(Team).where(Team.name == name))
    return found or make_team(s, name)


def add_cases(
    site: Site,
    team: str,
    specs: list[dict[str, Any]],
) -> list[int]:
    """Queued cases in a team, one per spec: text, and optionally priority, handle, external_id
    (a post on the stand-in), minutes (how long ago it was posted). Returns their ids."""
    ids = []
    with site.session() as s:
        account = s.get_one(Account, site.account_id)
        crew = team_of(s, team)
        for spec in specs:
            n = next(site.seq)
            created = utcnow() - timedelta(minutes=spec.get("minutes", 30 - n % 30))
            extra = {"external_id": spec["external_id"]} if "external_id" in spec else {}
            root = make_post(
                s,
                account,
                spec["text"],
                created_at=created,
                author_handle=spec.get("handle") or f"{team}_customer{n}",
                **extra,
            )
            priority = spec.get("priority", "P3")
            make_score(s, root, priority=priority, urgency=0.5)
            case = make_case(s, account, root, priority=priority, team=crew, topic="delivery")
            case.urgency = 0.5
            ids.append(case.id)
        s.commit()
    return ids


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)  # Argon2id takes a while: once per run


def people(site: Site, *handles: str, role: str = "agent") -> None:
    """Agents who can log in with PASSWORD (the existing ones kept)."""
    with site.session() as s:
        for handle in handles:
            if s.scalar(select(Agent).where(Agent.handle == handle)) is None:
                make_agent(s, handle, role=role, password_hash=password_hash())
        s.commit()


def creates_for(api: XStandIn, tweet_id: str) -> int:
    return sum(1 for c in api.creates if c.in_reply_to == tweet_id)


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def reply_state(site: Site, reply_id: int) -> str:
    with site.session() as s:
        return s.get_one(Reply, reply_id).state


def holder(site: Site, case_id: int) -> str | None:
    with site.session() as s:  # a short transaction: on SQLite each one takes the write lock
        case = s.get_one(Case, case_id)
        return None if case.claimed_by is None else s.get_one(Agent, case.claimed_by).handle
