"""A scratch PostgreSQL database for a benchmark: dropped and created afresh on every run."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def scratch_url(admin_url: str, name: str) -> str:
    """Drop and create database NAME on ADMIN_URL's server; return its URL."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"
