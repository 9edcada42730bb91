"""Flows: each step of the pipeline as one unit of work, enqueuing the next step after commit.

Tasks (workers/tasks.py) and the inline runner (imports, tests) call these. A flow opens its own
sessions; services never do. `enqueue(step, *args)` hands a follow-up step to whoever runs them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from socialcare.config import Settings
from socialcare.flows.base import Enqueue
from socialcare.flows.digests import schedule_digests, send_digest
from socialcare.flows.pipeline import route_posts, score_posts
from socialcare.flows.polling import poll_account
from socialcare.flows.replies import reconcile_reply, send_reply
from socialcare.flows.surge import send_surge_alert
from socialcare.flows.sweep import poll_due, sweep

__all__ = [
    "STEPS",
    "Enqueue",
    "InlineRunner",
    "poll_account",
    "poll_due",
    "reconcile_reply",
    "route_posts",
    "schedule_digests",
    "score_posts",
    "send_digest",
    "send_reply",
    "send_surge_alert",
    "sweep",
]

STEPS: dict[str, Callable[..., Any]] = {
    "poll_account": poll_account,
    "score_posts": score_posts,
    "route_posts": route_posts,
    "send_reply": send_reply,
    "reconcile_reply": reconcile_reply,
    "send_digest": send_digest,
    "send_surge_alert": send_surge_alert,
}


class InlineRunner:
    """Runs follow-up steps in this process, one after another (imports, tests, no broker)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self.pending: deque[tuple[str, tuple[Any, ...]]] = deque()

    def __call__(self, step: str, *args: Any) -> None:
        self.pending.append((step, args))

    def drain(self) -> int:
        ran = 0
        while self.pending:
            step, args = self.pending.popleft()
            STEPS[step](*args, enqueue=self, settings=self.settings)
            ran += 1
        return ran
