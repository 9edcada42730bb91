"""engagement growth between polls

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:40:00
"""

import sqlalchemy as sa
from alembic import op

import socialcare.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("engagement_per_hour", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column(
                "metrics_observed_at", socialcare.db.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("metrics_observed_at")
        batch.drop_column("engagement_per_hour")
