"""Running `socialcare` as its users do: the installed console script in a fresh process, with
its settings in the environment, checked for exit code and effect."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.conftest import REPO

# The console script pip installed beside this interpreter (`.venv/bin/socialcare`).
SOCIALCARE = str(Path(sys.executable).with_name("socialcare"))
# Settings a developer's shell may carry that would point a command elsewhere.
UNSET = (
    "DATABASE_URL",
    "REDIS_URL",
    "BROKER_URL",
    "X_BEARER_TOKEN",
    "X_API_KEY",
    "X_API_SECRET",
    "X_ACCESS_TOKEN",
    "X_ACCESS_TOKEN_SECRET",
    "X_BRAND_HANDLE",
    "MASTODON_API_BASE_URL",
    "MASTODON_ACCESS_TOKEN",
    "BLUESKY_HANDLE",
    "BLUESKY_APP_PASSWORD",
    "SMTP_URL",
    "SLACK_WEBHOOK_URL",
    "DIGEST_RECIPIENTS",
)
EX_TEMPFAIL = 75
TIMEOUT = 300


@dataclass(frozen=True)
class Done:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    @property
    def line(self) -> str:
        """The one line a failing command prints."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1, f"{self.args}: not one line on stderr:\n{self.err}"
        return lines[0]


@dataclass
class Shell:
    """A user's shell: SOCIALCARE_DATA_DIR a fresh folder, DATABASE_URL set for PostgreSQL
    (left unset for SQLite: the default file under the data folder, as a new user has it)."""

    data_dir: Path
    database_url: str | None
    extra_env: dict[str, str] = field(default_factory=dict)
    ran: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'socialcare.db'}"

    @property
    def backend(self) -> str:
        return "sqlite" if self.database_url is None else "postgres"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in UNSET}
        env.update(
            SOCIALCARE_DATA_DIR=str(self.data_dir),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            TQDM_DISABLE="1",
            COLUMNS="200",
        )
        if self.database_url is not None:
            env["DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def run(self, *args: str, code: int = 0, input: str | None = None) -> Done:
        """Run `socialcare ARGS...`; assert its exit code, and that a failure is one clear
        line on stderr (`error: ...`, or `poll skipped: ...` for EX_TEMPFAIL), never a
        traceback."""
        proc = subprocess.run(
            [SOCIALCARE, *args],
            env=self.env(),
            cwd=REPO,
            input=input,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        self.ran.append(tuple(args))
        done = Done(tuple(args), proc.returncode, proc.stdout, proc.stderr)
        context = f"socialcare {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        assert proc.returncode == code, context
        assert "Traceback" not in proc.stderr, context
        if code != 0:
            assert done.line.startswith(("error: ", "poll skipped: ")), context
        return done

    def fails(self, *args: str, code: int = 1) -> str:
        """The one line of a command that must fail with code."""
        return self.run(*args, code=code).line

    def run_all(self, commands: Sequence[Sequence[str]], code: int = 0) -> list[Done]:
        """Independent commands, each in its own process, a few at a time; each must exit
        with code."""
        with ThreadPoolExecutor(max_workers=3) as pool:
            return list(pool.map(lambda args: self.run(*args, code=code), commands))

    def fails_all(self, commands: Sequence[Sequence[str]], code: int = 1) -> list[str]:
        """The one line of each of these independent commands, which must fail with code."""
        return [done.line for done in self.run_all(commands, code=code)]

    @contextmanager
    def db(self) -> Iterator[Session]:
        """A session on the shell's database, to check what a command did."""
        engine = create_engine(self.url)
        try:
            with Session(engine) as session:
                yield session
        finally:
            engine.dispose()
