"""Running Alembic migrations from code (`socialcare db upgrade`, the release step)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from socialcare.config import Settings, get_settings

MIGRATIONS = Path(__file__).parent


def alembic_config(settings: Settings | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", (settings or get_settings()).sqlalchemy_url)
    return cfg


def upgrade(settings: Settings | None = None, revision: str = "head") -> None:
    """Bring the database to revision; running it again changes nothing."""
    command.upgrade(alembic_config(settings), revision)


def current(settings: Settings | None = None) -> None:
    command.current(alembic_config(settings), verbose=False)
