"""A database set up the way a new user sets one up, once per backend (`db upgrade`, `import
twcs` of the bundled sample, `agents add demo`), then copied fresh for each test."""

from __future__ import annotations

import csv
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.cli.shell import Done, Shell
from tests.conftest import PG_ADMIN_URL, REPO

SAMPLE = REPO / "socialcare" / "data" / "twcs_sample.csv"
# The bundled sample's first rows (whole conversations of several brands): enough for a queue,
# answered and unanswered cases, and quick to score.
SAMPLE_ROWS = 60
# A customer post that tries to drive the terminal showing it: clear the screen, set the
# window's title, ring the bell, and reverse the text after it.
HOSTILE_TEXT = "@sprintcare \x1b[2J\x1b]0;owned\x07 refund me now \u202eevil"
HOSTILE_ID = "990001"


def write_sample(path: Path) -> Path:
    with SAMPLE.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerows(rows[: SAMPLE_ROWS + 1])
        writer.writerow(
            [HOSTILE_ID, "990002", "True", "Tue Oct 31 23:59:00 +0000 2017", HOSTILE_TEXT, "", ""]
        )
    return path


@dataclass(frozen=True)
class Template:
    """A set-up database and what setting it up printed."""

    url: str
    setup: list[Done]


def _admin_execute(sql: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(sql))
    finally:
        admin.dispose()


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _set_up(shell: Shell, sample: Path) -> list[Done]:
    """What a new user runs first."""
    return [
        shell.run("db", "upgrade"),
        shell.run("import", "twcs", str(sample)),
        shell.run("agents", "add", "demo", "--name", "Demo Lead", "--role", "lead"),
    ]


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Template]]:
    """One set-up database per backend, both set up at once."""
    root = tmp_path_factory.mktemp("cli-template")
    sample = write_sample(root / "sample.csv")
    pg_name = f"sc_cli_tpl_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{pg_name}"')
    shells = {
        "sqlite": Shell(root / "sqlite-var", None),
        "postgres": Shell(root / "pg-var", _pg_url(pg_name)),
    }
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            set_up = pool.map(lambda s: _set_up(s, sample), shells.values())
            done = dict(zip(shells, set_up, strict=True))
        yield {name: Template(shells[name].url, done[name]) for name in shells}
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def _copy_sqlite(url: str, data_dir: Path) -> None:
    source = sqlite3.connect(url.removeprefix("sqlite:///"))
    target = sqlite3.connect(data_dir / "socialcare.db")
    with target:
        source.backup(target)
    source.close()
    target.close()


@pytest.fixture(params=["sqlite", "postgres"])
def shell(
    request: pytest.FixtureRequest, templates: dict[str, Template], tmp_path: Path
) -> Iterator[Shell]:
    """A fresh copy of the set-up database, and a fresh data folder, for one test."""
    template = templates[request.param]
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    if request.param == "sqlite":
        _copy_sqlite(template.url, data_dir)
        yield Shell(data_dir, None)
        return
    name = f"sc_cli_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.url.rsplit("/", 1)[1]}"')
    try:
        yield Shell(data_dir, _pg_url(name))
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_shell(templates: dict[str, Template], tmp_path: Path) -> Shell:
    """A copy of the set-up SQLite database only: for commands whose outcome does not depend
    on the database (usage errors, models, the web server's start)."""
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    _copy_sqlite(templates["sqlite"].url, data_dir)
    return Shell(data_dir, None)
