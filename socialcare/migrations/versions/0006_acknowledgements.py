"""public acknowledgements with a predicted wait

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 16:50:00
"""

import sqlalchemy as sa
from alembic import op

import socialcare.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replies") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="answer")
        )
    op.create_index(
        "uq_replies_one_ack",
        "replies",
        ["case_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'ack'"),
        sqlite_where=sa.text("kind = 'ack'"),
    )
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("ack_predicted_seconds", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("ack_predicted_at", socialcare.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("ack_predicted_at")
        batch.drop_column("ack_predicted_seconds")
    op.drop_index("uq_replies_one_ack", table_name="replies")
    with op.batch_alter_table("replies") as batch:
        batch.drop_column("kind")
