"""Beat stopped by a signal that lands inside one of its transactions: it stops at once and hands
its lease over, on both databases. (Celery beat closes its scheduler from the SIGTERM/SIGINT
handler, wherever the signal lands, and again as it exits.)"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import pytest
from sqlalchemy import select

from socialcare.config import Settings
from socialcare.db import session_scope
from socialcare.leases import Lease
from workers import beat
from workers.app import create_app


@pytest.fixture
def scheduler(engine: Any, settings: Settings) -> Iterator[beat.DatabaseScheduler]:
    app = create_app(settings)
    yield beat.DatabaseScheduler(app=app, lazy=True)
    app.close()


@pytest.mark.timeout(120)
def test_a_stop_signal_inside_the_lease_transaction_stops_beat_at_once_and_frees_the_lease(
    scheduler: beat.DatabaseScheduler, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler.tick()
    assert scheduler.leader

    def sync_and_exit(signum: int, frame: FrameType | None) -> None:  # as beat's handler does
        scheduler.close()
        raise SystemExit()

    real_hold = beat.hold_lease

    def hold_then_signal(**kwargs: Any) -> bool:
        won = real_hold(**kwargs)  # the lease row is written: this transaction holds its lock
        os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs here, inside the transaction
        return won

    previous = signal.signal(signal.SIGUSR1, sync_and_exit)
    monkeypatch.setattr(beat, "hold_lease", hold_then_signal)
    try:
        started = time.monotonic()
        with pytest.raises(SystemExit):
            scheduler.tick()
        scheduler.close()  # as beat's exit does
        took = time.monotonic() - started
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert took < 5, f"beat took {took:.1f}s to stop"
    with session_scope(settings) as session:
        lease = session.execute(select(Lease).where(Lease.name == beat.LEASE)).scalar_one()
        assert lease.holder == scheduler.holder
        assert lease.expires_at.replace(tzinfo=UTC) < datetime.now(UTC), "handed over at once"
    assert not scheduler.leader
