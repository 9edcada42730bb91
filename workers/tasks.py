"""Celery entry points: ids in, one flow call. The database holds the state; see flows.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError

from socialcare import flows
from workers.app import RETRY_BACKOFF_MAX, app

# A database that drops a connection, deadlocks or restarts: try again shortly (the sweep is the
# safety net behind this). Countdowns stay far below the broker's visibility timeout.
RETRY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 1,
    "retry_backoff_max": RETRY_BACKOFF_MAX,
    "retry_jitter": True,
    "max_retries": 5,
}


def enqueue(step: str, *args: Any) -> None:
    """Send a pipeline step to the broker (called after the enqueuing transaction commits)."""
    app.send_task(f"socialcare.{step}", args=list(args))


@app.task(name="socialcare.poll_account", **RETRY)
def poll_account(account_id: int) -> int:
    return flows.poll_account(account_id, enqueue=enqueue)


@app.task(name="socialcare.score_posts", **RETRY)
def score_posts(post_ids: list[int]) -> int:
    return flows.score_posts(post_ids, enqueue=enqueue)


@app.task(name="socialcare.route_posts", **RETRY)
def route_posts(post_ids: list[int]) -> int:
    return flows.route_posts(post_ids, enqueue=enqueue)


@app.task(name="socialcare.send_reply", **RETRY)
def send_reply(reply_id: int) -> str:
    return flows.send_reply(reply_id, enqueue=enqueue)


@app.task(name="socialcare.reconcile_reply", **RETRY)
def reconcile_reply(reply_id: int) -> str:
    return flows.reconcile_reply(reply_id, enqueue=enqueue)


@app.task(name="socialcare.sweep", **RETRY)
def sweep() -> dict[str, int]:
    return flows.sweep(enqueue=enqueue)


@app.task(name="socialcare.poll_due", **RETRY)
def poll_due() -> int:
    return flows.poll_due(enqueue=enqueue)


@app.task(name="socialcare.schedule_digests", **RETRY)
def schedule_digests() -> int:
    return flows.schedule_digests(enqueue=enqueue)


@app.task(name="socialcare.send_digest", **RETRY)
def send_digest(delivery_id: int) -> str:
    return flows.send_digest(delivery_id, enqueue=enqueue)


@app.task(name="socialcare.send_surge_alert", **RETRY)
def send_surge_alert(alert_id: int) -> str:
    return flows.send_surge_alert(alert_id, enqueue=enqueue)
