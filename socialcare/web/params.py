"""Ids in paths and queries, bounded by the keys they name: a case, reply, canned reply or token
id is a PostgreSQL INTEGER, so a larger one is refused (422) before it reaches a database that
could not even compare it (socialcare.ids has the ranges)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from socialcare.ids import INTEGER_MAX

RowId = Annotated[int, Path(ge=1, le=INTEGER_MAX)]
RowIdQuery = Annotated[int | None, Query(ge=1, le=INTEGER_MAX)]
