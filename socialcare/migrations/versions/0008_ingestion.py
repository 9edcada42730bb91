"""ingestion at scale: rate-limit snapshots, billed reads, incidents, adaptive poll interval

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 10:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import socialcare.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("reset_at", socialcare.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", socialcare.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id", "endpoint"),
    )
    op.create_table(
        "read_usage",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("reads", sa.Integer(), nullable=False),
        sa.Column("billed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id", "day"),
    )
    op.create_table(
        "ingestion_incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("opened_at", socialcare.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", socialcare.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_incidents_account_open",
        "ingestion_incidents",
        ["account_id", "kind", "resolved_at"],
    )
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("poll_interval_seconds", sa.Float(), nullable=True))
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("read_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("read_on")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("poll_interval_seconds")
    op.drop_index("ix_incidents_account_open", table_name="ingestion_incidents")
    op.drop_table("ingestion_incidents")
    op.drop_table("read_usage")
    op.drop_table("rate_limits")
