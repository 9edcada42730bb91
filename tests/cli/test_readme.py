"""The README's commands, the real command tree and this suite agree: a command added, renamed
or dropped in one of them without the others fails here."""

from __future__ import annotations

from tests.cli.readme import (
    REPO,
    command_paths,
    mentioned,
    quick_start_commands,
    readme,
    resolve,
    run_in_tests,
    section,
)

# Commands whose run is tested elsewhere, not in a fresh process of this package.
ELSEWHERE = {
    # The main job starts workers, beat and web: run and stopped by its own test.
    "run": REPO / "tests" / "e2e" / "test_main_job.py",
}


def test_every_command_the_readme_names_exists() -> None:
    _, unknown = mentioned(readme())
    assert unknown == set(), f"the README names commands that do not exist: {sorted(unknown)}"


def test_the_command_line_section_lists_exactly_the_commands_there_are() -> None:
    listed, unknown = mentioned(section(readme(), "Command line"))
    assert unknown == set()
    assert listed == command_paths(), (
        f"missing from the README: {sorted(command_paths() - listed)}; "
        f"not commands: {sorted(listed - command_paths())}"
    )


def test_every_command_is_run_as_a_user_runs_it() -> None:
    """Each command runs in a fresh process somewhere in tests/cli (the Quick start's lines
    are run as the README writes them), or, for `run`, in the test named above."""
    here = sorted((REPO / "tests" / "cli").glob("*.py"))
    exercised = run_in_tests(here)
    for words in quick_start_commands():
        exercised |= resolve(words)[0]
    for path, test_file in ELSEWHERE.items():
        assert test_file.is_file() and f'"{path}"' in test_file.read_text(encoding="utf-8")
        exercised.add(path)
    assert command_paths() - exercised == set(), "commands no test runs"


def test_one_spelling_per_command() -> None:
    """`accounts add PLATFORM HANDLE` is how accounts are added; the per-platform commands are
    gone from the tree and the README."""
    paths = command_paths()
    assert "accounts add" in paths
    assert not [p for p in paths if p.startswith("accounts add-")]
    for old in ("add-x", "add-mastodon", "add-bluesky", "add-replay"):
        assert old not in readme()


def test_every_entry_point_registers_every_model() -> None:
    """The processes the Procfile starts (`socialcare ...`, and Celery's `-A workers.app` for
    the worker and beat) know every table, so no flush meets a foreign key to a table it never
    imported (NoReferencedTableError)."""
    import subprocess
    import sys

    from socialcare.models import Base

    expected = sorted(Base.metadata.tables)
    for module in ("socialcare.cli", "workers.app"):
        script = (
            f"import {module}; from socialcare.db import Base; print(sorted(Base.metadata.tables))"
        )
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
        ).stdout
        assert out.strip() == str(expected), module
