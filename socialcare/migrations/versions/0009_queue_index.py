"""queue indexes: open cases in queue order, and by platform and topic

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OPEN_SQL = "status IN ('new', 'queued', 'claimed', 'responded')"
INDEXES = {
    # The queue reads the first 200 open cases in this order: an index scan that stops there,
    # instead of sorting every open case.
    "ix_cases_open_queue": ["priority", "opened_at", "id"],
    # The queue's filter menus step through these (one index probe per distinct value).
    "ix_cases_open_platform": ["platform"],
    "ix_cases_open_topic": ["topic"],
}


def upgrade() -> None:
    where = sa.text(OPEN_SQL)
    for name, columns in INDEXES.items():
        op.create_index(name, "cases", columns, postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="cases")
