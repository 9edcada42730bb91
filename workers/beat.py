"""A beat scheduler that is safe to run twice: a database lease picks the one that sends, and
every run of a periodic task is claimed in the database (compare-and-set) before it is sent.

During a deploy old and new beats overlap; if the leader dies, a standby takes over once the
lease expires (BEAT_LEASE_SECONDS), continuing the same schedule from the shared run records.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from celery.beat import ScheduleEntry, Scheduler
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from socialcare.config import get_settings
from socialcare.db import session_scope
from socialcare.leases import claim_run, hold_lease, release_lease, schedule_state

log = logging.getLogger(__name__)
LEASE = "beat"


class DatabaseScheduler(Scheduler):
    """Celery beat scheduler with a leader lease and run records in the database."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.settings = get_settings()
        self.lease_seconds = self.settings.beat_lease_seconds
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.leader = False
        self.stale = False
        self.closed = False
        self.in_transaction = 0
        kwargs["max_interval"] = max(0.5, min(5.0, self.lease_seconds / 3))
        super().__init__(*args, **kwargs)

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def setup_schedule(self) -> None:
        self.install_default_entries(self.data)
        self.merge_inplace(self.app.conf.beat_schedule)
        self.stale = True  # the run records are read at the first tick, once the database answers

    def _load_runs(self) -> None:
        """Bring every entry's last run from the database (another beat may have sent it)."""
        with self._database() as session:
            state = schedule_state(session=session)
        for name, entry in self.schedule.items():
            if name in state:
                entry.last_run_at, entry.total_run_count = state[name]
        self._heap = None

    def tick(self, *args: Any, **kwargs: Any) -> float:
        self.closed = False  # a scheduler ticking again after close() may close again
        try:
            with self._database() as session:
                leader = hold_lease(
                    session=session,
                    name=LEASE,
                    holder=self.holder,
                    seconds=self.lease_seconds,
                    now=self._now(),
                )
            if leader != self.leader or self.stale:
                self._load_runs()
                self.stale = False
        except SQLAlchemyError as exc:
            # The database is away: send nothing (without the lease we may not be the leader)
            # and try again shortly; beat itself must outlive the outage.
            log.warning("beat %s cannot reach the database: %s", self.holder, type(exc).__name__)
            self.leader = False
            return float(self.max_interval)
        if leader != self.leader:
            log.info("beat %s %s the lease", self.holder, "took" if leader else "lost")
            self.leader = leader
        if not leader:
            return float(self.max_interval)
        return float(super().tick(*args, **kwargs))

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        try:
            mine = self._claim(entry)
        except SQLAlchemyError as exc:
            log.warning("beat %s: %s not sent: %s", self.holder, entry.name, type(exc).__name__)
            self.stale = True  # reload the shared run records, so this run is sent later
            return
        if not mine:
            log.info("beat %s: %s already ran elsewhere", self.holder, entry.name)
            self._load_runs()
            return
        super().apply_entry(entry, producer=producer)

    def _claim(self, entry: ScheduleEntry) -> bool:
        with self._database() as session:
            return claim_run(
                session=session,
                name=entry.name,
                expected_count=entry.total_run_count,
                first_run_at=entry.last_run_at or self._now(),
                now=self._now(),
            )

    @contextmanager
    def _database(self) -> Iterator[Session]:
        """A transaction of this scheduler's; close() knows when one is open."""
        self.in_transaction += 1
        try:
            with session_scope(self.settings) as session:
                yield session
        finally:
            self.in_transaction -= 1

    def close(self) -> None:
        # Beat's SIGTERM/SIGINT handler calls close() wherever the signal lands, then exits and
        # calls it again. Inside one of our transactions (SQLite's write lock held) a release
        # would wait for that lock, held by the very code it interrupted, for the whole busy
        # timeout: so close only once the transaction has unwound. Signals wait meanwhile.
        if self.in_transaction or self.closed:
            return
        self.closed = True
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            if self.leader:
                self.leader = False
                with self._database() as session:
                    release_lease(session=session, name=LEASE, holder=self.holder, now=self._now())
        except SQLAlchemyError:
            log.warning("beat %s could not hand the lease over; it expires", self.holder)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        super().close()

    @property
    def info(self) -> str:
        return f"database lease {LEASE!r}, {self.lease_seconds:g}s"
