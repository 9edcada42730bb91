"""A beat scheduler that is safe to run twice: a database lease picks the one that sends, and
every run of a periodic task is claimed in the database (compare-and-set) before it is sent.

During a deploy old and new beats overlap; if the leader dies, a standby takes over once the
lease expires (BEAT_LEASE_SECONDS), continuing the same schedule from the shared run records.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime
from typing import Any

from celery.beat import ScheduleEntry, Scheduler

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
        kwargs["max_interval"] = max(0.5, min(5.0, self.lease_seconds / 3))
        super().__init__(*args, **kwargs)

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def setup_schedule(self) -> None:
        self.install_default_entries(self.data)
        self.merge_inplace(self.app.conf.beat_schedule)
        self._load_runs()

    def _load_runs(self) -> None:
        """Bring every entry's last run from the database (another beat may have sent it)."""
        with session_scope(self.settings) as session:
            state = schedule_state(session=session)
        for name, entry in self.schedule.items():
            if name in state:
                entry.last_run_at, entry.total_run_count = state[name]
        self._heap = None

    def tick(self, *args: Any, **kwargs: Any) -> float:
        with session_scope(self.settings) as session:
            leader = hold_lease(
                session=session,
                name=LEASE,
                holder=self.holder,
                seconds=self.lease_seconds,
                now=self._now(),
            )
        if leader != self.leader:
            log.info("beat %s %s the lease", self.holder, "took" if leader else "lost")
            self.leader = leader
            self._load_runs()
        if not leader:
            return float(self.max_interval)
        return float(super().tick(*args, **kwargs))

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        with session_scope(self.settings) as session:
            mine = claim_run(
                session=session,
                name=entry.name,
                expected_count=entry.total_run_count,
                first_run_at=entry.last_run_at or self._now(),
                now=self._now(),
            )
        if not mine:
            log.info("beat %s: %s already ran elsewhere", self.holder, entry.name)
            self._load_runs()
            return
        super().apply_entry(entry, producer=producer)

    def close(self) -> None:
        if self.leader:
            with session_scope(self.settings) as session:
                release_lease(session=session, name=LEASE, holder=self.holder, now=self._now())
        super().close()

    @property
    def info(self) -> str:
        return f"database lease {LEASE!r}, {self.lease_seconds:g}s"
