"""API tokens expire: expires_at, set at creation

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 22:10:00
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import socialcare.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UTC_TYPE = socialcare.db.UTCDateTime(timezone=True)
# Tokens made before expiry existed get the default term from the upgrade on, not from their
# creation: an integration that has run for a year is not cut off by the deploy itself.
EXISTING_TERM = timedelta(days=90)


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", UTC_TYPE, nullable=True))
    tokens = sa.table("api_tokens", sa.column("expires_at", UTC_TYPE))
    until = datetime.now(UTC) + EXISTING_TERM
    op.execute(tokens.update().where(tokens.c.expires_at.is_(None)).values(expires_at=until))
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("expires_at", existing_type=UTC_TYPE, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
