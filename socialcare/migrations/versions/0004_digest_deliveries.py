"""scheduled digest deliveries

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 15:42:54.777610
"""

import sqlalchemy as sa
from alembic import op

import socialcare.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("tz", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("period_start", socialcare.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", socialcare.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", socialcare.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", socialcare.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("result_target", sa.String(length=512), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", socialcare.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "recipient", "period", "period_start", name="uq_digest_deliveries_recipient_period"
        ),
    )
    with op.batch_alter_table("digest_deliveries") as batch:
        batch.create_index(
            "ix_digest_deliveries_state_due", ["state", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("digest_deliveries") as batch:
        batch.drop_index("ix_digest_deliveries_state_due")
    op.drop_table("digest_deliveries")
