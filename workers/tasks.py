"""Celery entry points: ids in, one flow call. The database holds the state; see flows.py."""

from __future__ import annotations

from typing import Any

from socialcare import flows
from workers.app import app


def enqueue(step: str, *args: Any) -> None:
    """Send a pipeline step to the broker (called after the enqueuing transaction commits)."""
    app.send_task(f"socialcare.{step}", args=list(args))


@app.task(name="socialcare.poll_account")
def poll_account(account_id: int) -> int:
    return flows.poll_account(account_id, enqueue=enqueue)


@app.task(name="socialcare.score_posts")
def score_posts(post_ids: list[int]) -> int:
    return flows.score_posts(post_ids, enqueue=enqueue)


@app.task(name="socialcare.route_posts")
def route_posts(post_ids: list[int]) -> int:
    return flows.route_posts(post_ids, enqueue=enqueue)


@app.task(name="socialcare.send_reply")
def send_reply(reply_id: int) -> str:
    return flows.send_reply(reply_id, enqueue=enqueue)


@app.task(name="socialcare.reconcile_reply")
def reconcile_reply(reply_id: int) -> str:
    return flows.reconcile_reply(reply_id, enqueue=enqueue)


@app.task(name="socialcare.sweep")
def sweep() -> dict[str, int]:
    return flows.sweep(enqueue=enqueue)


@app.task(name="socialcare.poll_due")
def poll_due() -> int:
    return flows.poll_due(enqueue=enqueue)
