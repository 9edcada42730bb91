"""team calendars

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 16:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.add_column(sa.Column("calendar", JSON, nullable=False, server_default="{}"))
    with op.batch_alter_table("teams") as batch:
        batch.alter_column("calendar", server_default=None)
    op.create_index("ix_cases_opened_at", "cases", ["opened_at"])


def downgrade() -> None:
    op.drop_index("ix_cases_opened_at", table_name="cases")
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("calendar")
