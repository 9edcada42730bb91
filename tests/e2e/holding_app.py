"""The deployed Celery app (workers.app: its broker settings, consumer and task defaults) with
one task more, for tests that need a task to be running while the broker goes away: it marks
that it started and runs until the test lets it finish."""

from __future__ import annotations

import time
from pathlib import Path

from workers.app import QUEUE, app

HOLD_TASK = "tests.hold"
HOLD_LIMIT = 120.0  # seconds a held task waits for its release before it gives up


@app.task(name=HOLD_TASK, queue=QUEUE)
def hold(folder: str, name: str) -> str:
    """Add a line to `<name>.runs`, wait for `<name>.release`, then write `<name>.done`."""
    base = Path(folder)
    with (base / f"{name}.runs").open("a") as runs:
        runs.write("started\n")
    deadline = time.monotonic() + HOLD_LIMIT
    while not (base / f"{name}.release").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} was never released")
        time.sleep(0.05)
    (base / f"{name}.done").write_text("done")
    return name


__all__ = ["HOLD_TASK", "app", "hold"]
