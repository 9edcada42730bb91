"""languages: posts.language, and the languages teams and agents read

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 01:00:00

posts.language stays NULL for the posts stored before this revision: NULL means "not detected
yet", and `socialcare languages fill` detects them in batches, newest first, while the app runs.
Detecting inside the migration would hold the release step for as long as the posts table takes
to read (and load the language model into it), for posts that are mostly long closed.

The default teams read English from now on, as new installations' do; other teams read any
language until `socialcare teams languages` says otherwise.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
DEFAULT_TEAMS = ("swat", "tech", "billing", "care")


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
    op.create_index("ix_posts_language", "posts", ["language"])
    for table in ("teams", "agents"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("languages", JSON, nullable=False, server_default="[]"))
    teams = sa.table("teams", sa.column("name", sa.String), sa.column("languages", JSON))
    op.execute(teams.update().where(teams.c.name.in_(DEFAULT_TEAMS)).values(languages=["en"]))


def downgrade() -> None:
    for table in ("agents", "teams"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("languages")
    op.drop_index("ix_posts_language", table_name="posts")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("language")
