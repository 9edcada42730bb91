"""cases: waiting_since (when the customer's current wait began) and reply_due_at (the
next-reply SLA's due time when they wrote again after a brand reply); the queue orders by the
wait, not the case's age

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 02:00:00
"""

import sqlalchemy as sa
from alembic import op

import socialcare.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UTC_TYPE = socialcare.db.UTCDateTime(timezone=True)
OPEN_SQL = "status IN ('new', 'queued', 'claimed', 'responded')"
# (name, old columns, new columns); the open-cases index is partial (migration 0009).
INDEXES = (
    (
        "ix_cases_queue",
        ["status", "team_id", "priority", "opened_at"],
        ["status", "team_id", "priority", "waiting_since"],
        False,
    ),
    (
        "ix_cases_open_queue",
        ["priority", "opened_at", "id"],
        ["priority", "waiting_since", "id"],
        True,
    ),
)


def _index(name: str, columns: list[str], partial: bool) -> None:
    if partial:
        where = sa.text(OPEN_SQL)
        op.create_index(name, "cases", columns, postgresql_where=where, sqlite_where=where)
    else:
        op.create_index(name, "cases", columns)


def upgrade() -> None:
    op.add_column("cases", sa.Column("waiting_since", UTC_TYPE, nullable=True))
    op.add_column("cases", sa.Column("reply_due_at", UTC_TYPE, nullable=True))
    # Existing cases wait since they opened: a returning customer's later post is not known here
    # (new posts set it from now on).
    cases = sa.table(
        "cases", sa.column("waiting_since", UTC_TYPE), sa.column("opened_at", UTC_TYPE)
    )
    op.execute(cases.update().values(waiting_since=cases.c.opened_at))
    for name, _old, new, partial in INDEXES:
        op.drop_index(name, table_name="cases")
        _index(name, new, partial)


def downgrade() -> None:
    for name, old, _new, partial in INDEXES:
        op.drop_index(name, table_name="cases")
        _index(name, old, partial)
    op.drop_column("cases", "reply_due_at")
    op.drop_column("cases", "waiting_since")
