"""posts.language on SQLite and PostgreSQL: set at ingestion for customer posts, filled later for
posts stored before detection, and added by migration 0011."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Engine, inspect, select, text, update
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.db import get_engine
from socialcare.migrations import alembic_config, upgrade
from socialcare.models import Base
from socialcare.posts.models import Post
from socialcare.posts.service import ensure_account, fill_languages, ingest_posts
from socialcare.sources.base import IncomingPost

AT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
TEXTS = {
    "1": ("@AcmeCare سفارشم هنوز نرسیده و پشتیبانی هم جواب نمیده", "fa"),
    "2": ("@AcmeCare Мой интернет не работает третий день", "ru"),
    "3": ("@AcmeCare my order never came and nobody answers", "en"),
    "4": ("@AcmeCare 👍", "und"),
}


def _post(external_id: str, text: str, **kw: object) -> IncomingPost:
    return IncomingPost(
        platform="x",
        external_id=external_id,
        author_external_id=f"c{external_id}",
        author_handle="customer",
        text=text,
        created_at=AT,
        **kw,  # type: ignore[arg-type]
    )


def _languages(session: Session) -> dict[str, str | None]:
    rows = session.execute(select(Post.external_id, Post.language)).all()
    return {r.external_id: r.language for r in rows}


def test_customer_posts_are_stored_with_their_language_and_filled_when_missing(
    session: Session,
) -> None:
    account = ensure_account(session, platform="x", handle="AcmeCare", source="x")
    posts = [_post(i, t) for i, (t, _) in TEXTS.items()]
    posts.append(
        _post("5", "Hello, we are sorry: please DM us", is_brand=True, in_reply_to_external_id="3")
    )
    ingest_posts(session=session, account=account, posts=posts, observed_at=AT)
    expected = {i: code for i, (_, code) in TEXTS.items()} | {"5": None}
    assert _languages(session) == expected

    # Posts stored before detection existed: NULL until filled, newest first, in batches.
    session.execute(update(Post).values(language=None))
    done, below = fill_languages(session=session, batch=3)
    assert done == 3
    assert _languages(session) == expected | {"1": None}
    assert fill_languages(session=session, batch=3, below=below)[0] == 1
    assert fill_languages(session=session, batch=3) == (0, None)
    assert _languages(session) == expected


def _columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_migration_0011_adds_the_columns_and_the_default_teams_read_english(
    settings: Settings,
) -> None:
    engine = get_engine(settings)
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    upgrade(settings, "0010")
    with engine.begin() as conn:
        for name in ("care", "tehran"):
            conn.execute(
                text(
                    "INSERT INTO teams (name, skills, sla_seconds, calendar, created_at) "
                    "VALUES (:name, '[]', '{}', '{}', :at)"
                ),
                {"name": name, "at": AT},
            )
    upgrade(settings, "0011")
    assert "language" in _columns(engine, "posts")
    assert "ix_posts_language" in {i["name"] for i in inspect(engine).get_indexes("posts")}
    assert "languages" in _columns(engine, "agents")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, languages FROM teams ORDER BY name")).all()
    read = {name: value if isinstance(value, list) else json.loads(value) for name, value in rows}
    assert read == {"care": ["en"], "tehran": []}
    command.downgrade(alembic_config(settings), "0010")
    assert "language" not in _columns(engine, "posts")
    assert "languages" not in _columns(engine, "teams")
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
