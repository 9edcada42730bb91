"""surges: detector state, live clusters, incidents, their posts, cases, timeline and alerts

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 01:00:00
"""

import sqlalchemy as sa
from alembic import op

import socialcare.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UTC_TYPE = socialcare.db.UTCDateTime(timezone=True)
JSON_TYPE = socialcare.db.JSONType
POST_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "surge_accounts",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("baseline", JSON_TYPE, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC_TYPE, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "surges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("keywords", JSON_TYPE, nullable=False),
        sa.Column("started_at", UTC_TYPE, nullable=False),
        sa.Column("detected_at", UTC_TYPE, nullable=False),
        sa.Column("last_post_at", UTC_TYPE, nullable=False),
        sa.Column("post_count", sa.Integer(), nullable=False),
        sa.Column("rate_per_hour", sa.Float(), nullable=False),
        sa.Column("expected_per_hour", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("acknowledged_at", UTC_TYPE, nullable=True),
        sa.Column("answered_at", UTC_TYPE, nullable=True),
        sa.Column("resolved_at", UTC_TYPE, nullable=True),
        sa.Column("updated_at", UTC_TYPE, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("surges") as batch:
        batch.create_index("ix_surges_account_status", ["account_id", "status"], unique=False)
    op.create_table(
        "surge_clusters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("centroid", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("first_at", UTC_TYPE, nullable=False),
        sa.Column("last_at", UTC_TYPE, nullable=False),
        sa.Column("recent", JSON_TYPE, nullable=False),
        sa.Column("keywords", JSON_TYPE, nullable=False),
        sa.Column("topics", JSON_TYPE, nullable=False),
        sa.Column("surge_id", sa.Integer(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["surge_id"], ["surges.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("surge_clusters") as batch:
        batch.create_index("ix_surge_clusters_account_id", ["account_id"], unique=False)
    op.create_table(
        "surge_posts",
        sa.Column("surge_id", sa.Integer(), nullable=False),
        sa.Column("post_id", POST_ID, nullable=False),
        sa.Column("created_at", UTC_TYPE, nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"]),
        sa.ForeignKeyConstraint(["surge_id"], ["surges.id"]),
        sa.PrimaryKeyConstraint("surge_id", "post_id"),
    )
    op.create_table(
        "surge_cases",
        sa.Column("surge_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", UTC_TYPE, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["surge_id"], ["surges.id"]),
        sa.PrimaryKeyConstraint("surge_id", "case_id"),
    )
    with op.batch_alter_table("surge_cases") as batch:
        batch.create_index("ix_surge_cases_case_id", ["case_id"], unique=False)
    op.create_table(
        "surge_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("surge_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", UTC_TYPE, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("detail", JSON_TYPE, nullable=False),
        sa.ForeignKeyConstraint(["surge_id"], ["surges.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("surge_events") as batch:
        batch.create_index("ix_surge_events_surge_id", ["surge_id"], unique=False)
    op.create_table(
        "surge_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("surge_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", UTC_TYPE, nullable=True),
        sa.Column("sent_at", UTC_TYPE, nullable=True),
        sa.Column("result_target", sa.String(length=512), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", UTC_TYPE, nullable=False),
        sa.ForeignKeyConstraint(["surge_id"], ["surges.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("surge_id", "recipient", name="uq_surge_alerts_surge_recipient"),
    )
    with op.batch_alter_table("surge_alerts") as batch:
        batch.create_index("ix_surge_alerts_state_due", ["state", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("surge_alerts") as batch:
        batch.drop_index("ix_surge_alerts_state_due")
    op.drop_table("surge_alerts")
    with op.batch_alter_table("surge_events") as batch:
        batch.drop_index("ix_surge_events_surge_id")
    op.drop_table("surge_events")
    with op.batch_alter_table("surge_cases") as batch:
        batch.drop_index("ix_surge_cases_case_id")
    op.drop_table("surge_cases")
    op.drop_table("surge_posts")
    with op.batch_alter_table("surge_clusters") as batch:
        batch.drop_index("ix_surge_clusters_account_id")
    op.drop_table("surge_clusters")
    with op.batch_alter_table("surges") as batch:
        batch.drop_index("ix_surges_account_status")
    op.drop_table("surges")
    op.drop_table("surge_accounts")
