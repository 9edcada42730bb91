"""What every flow shares: the Enqueue protocol and enqueue-after-commit."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.orm import Session

from socialcare.db import after_commit


class Enqueue(Protocol):
    def __call__(self, step: str, *args: Any) -> None: ...


def later(session: Session, enqueue: Enqueue, step: str, *args: Any) -> None:
    after_commit(session, lambda: enqueue(step, *args))


def chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]
