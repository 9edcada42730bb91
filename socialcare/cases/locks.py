"""Case rows read to be changed are locked (the route step's batch locks: routing/locks.py)."""

from __future__ import annotations

from sqlalchemy import Select

from socialcare.cases.models import Case


def locked(stmt: Select[Case]) -> Select[Case]:
    """Case rows are read to be changed: lock them, so concurrent routings never lose updates
    (SQLite needs no row lock: its transactions already take the write lock at BEGIN)."""
    return stmt.with_for_update().execution_options(populate_existing=True)
