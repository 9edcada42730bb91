"""The ranges row ids can take, so a caller's out-of-range id is a clear "no such row", never a
database error: PostgreSQL's INTEGER is 32 bits and its BIGINT (and every SQLite integer) 64."""

from __future__ import annotations

INTEGER_MAX = 2**31 - 1  # cases, replies, agents, teams, tokens, accounts...
BIGINT_MAX = 2**63 - 1  # posts and audit events


def in_range(value: int, *, big: bool = False) -> bool:
    """Whether value can be the id of a row whose key is INTEGER (or BIGINT when big)."""
    return 1 <= value <= (BIGINT_MAX if big else INTEGER_MAX)
