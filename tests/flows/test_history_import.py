"""`socialcare import twcs` cut short by Ctrl-C or a kill, then run again: it resumes and ends
where a clean import ends, every customer post scored once and in its case."""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner, Result

from socialcare.cases.models import Case
from socialcare.cli import app
from socialcare.cli.history import ProgressDisplay
from socialcare.config import Settings
from socialcare.db import session_scope
from socialcare.flows.history import ImportProgress
from socialcare.models import Base
from socialcare.posts.models import Post, Score
from tests.conftest import REPO, SHARED_DATA

HEAD = SHARED_DATA / "twcs" / "twcs_head_1000.csv"
ROWS = 300  # of HEAD: real threads, three pages, quick
PAGES = ("--page-rows", "100")
Done = subprocess.CompletedProcess

# The import as a user runs it, in its own process, with the cue-word models of the pipeline
# tests; each sentiment batch takes a little while, so a signal lands mid-import.
IMPORT = """
import sys, time
from socialcare.scoring import complaint, sentiment
from tests.fakes import CueWordComplaints, CueWordSentiment

class Deliberate(CueWordSentiment):
    def predict(self, texts):
        time.sleep(0.1)
        return super().predict(texts)

model = Deliberate()
sentiment.get_sentiment_model = lambda settings: model
complaint.get_complaint_model = lambda settings: CueWordComplaints()
from socialcare.cli import main
sys.argv = ["socialcare", "import", "twcs", *sys.argv[1:]]
main()
"""


@dataclass(frozen=True)
class State:
    cases: list[list[str]]  # each case as its customer posts' ids
    case_rows: int
    stages: dict[str, int]  # posts by stage
    scored_twice: int  # posts with more than one score
    unscored: int  # customer posts that are work and have no score
    first_responses: list[tuple[str, str]]  # per case: opened, first response


def _state(settings: Settings) -> State:
    with session_scope(settings) as s:
        members: dict[int, set[str]] = {}
        for case_id, ext in s.execute(
            select(Post.case_id, Post.external_id).where(
                Post.case_id.is_not(None), Post.is_brand.is_(False)
            )
        ):
            members.setdefault(case_id or 0, set()).add(ext)
        stages = {
            str(stage): int(n)
            for stage, n in s.execute(select(Post.stage, func.count()).group_by(Post.stage))
        }
        twice = s.execute(
            select(Score.post_id).group_by(Score.post_id).having(func.count() > 1)
        ).all()
        unscored = s.execute(
            select(func.count())
            .select_from(Post)
            .outerjoin(Score, Score.post_id == Post.id)
            .where(Post.is_brand.is_(False), Post.stage != "ignored", Score.id.is_(None))
        ).scalar_one()
        first_responses = sorted(
            (str(c.opened_at), str(c.first_response_at)) for c in s.execute(select(Case)).scalars()
        )
        return State(
            cases=sorted(sorted(m) for m in members.values()),
            case_rows=int(s.execute(select(func.count()).select_from(Case)).scalar_one()),
            stages=stages,
            scored_twice=len(twice),
            unscored=int(unscored),
            first_responses=first_responses,
        )


def _posts(settings: Settings) -> int:
    with session_scope(settings) as s:
        return int(s.execute(select(func.count()).select_from(Post)).scalar_one())


def _import(path: Path) -> Result:
    return CliRunner().invoke(app, ["import", "twcs", str(path), *PAGES])


def _interrupted_import(
    settings: Settings, path: Path, how: signal.Signals, *, after: int
) -> Done[str]:
    """The import in a process of its own, sent `how` once more than `after` rows are stored."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": settings.database_url,
        "SOCIALCARE_DATA_DIR": str(settings.data_dir),
    }
    args = [sys.executable, "-c", IMPORT, str(path), *PAGES, "--progress-seconds", "0"]
    # Watched through a plain connection: the app's SQLite sessions begin with the write lock,
    # and would queue behind the import's.
    watch = create_engine(settings.database_url)
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            with watch.connect() as conn:
                if conn.execute(select(func.count()).select_from(Post)).scalar_one() > after:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(how)
        out, err = proc.communicate(timeout=60)
    finally:
        watch.dispose()
        if proc.poll() is None:
            proc.kill()
    return Done(args, proc.returncode, out, err)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """The first ROWS rows of HEAD (and its header)."""
    with HEAD.open(newline="", encoding="utf-8") as f:
        kept = list(itertools.islice(csv.reader(f), ROWS + 1))
    path = tmp_path / "head.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(kept)
    return path


def test_an_import_killed_then_stopped_by_ctrl_c_resumes_each_time_and_ends_as_a_clean_one(
    engine, settings, model, sample
):
    clean = _import(sample)
    assert clean.exit_code == 0, clean.output
    expected = _state(settings)
    total = _posts(settings)
    assert expected.scored_twice == 0 and expected.unscored == 0
    assert set(expected.stages) == {"routed", "ignored"}
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)

    killed = _interrupted_import(settings, sample, signal.SIGKILL, after=0)
    assert killed.returncode == -signal.SIGKILL and killed.stdout == ""
    stored = _posts(settings)
    cut_short = _state(settings)
    assert 0 < stored < total and cut_short.case_rows < expected.case_rows, killed.stderr
    assert cut_short.scored_twice == 0

    # Run again, and stopped by Ctrl-C once it stored more.
    stopped = _interrupted_import(settings, sample, signal.SIGINT, after=stored)
    assert f"resuming: {stored} of {total} rows were stored by an earlier run" in stopped.stderr
    assert stopped.returncode == 130 and stopped.stdout == "", stopped.stderr
    assert "Traceback" not in stopped.stderr
    now = _posts(settings)
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith(f"interrupted at row {now} of {total} ("), last
    assert "run the same command again to resume" in last
    assert f"import: {stored}/{total} rows" in stopped.stderr  # lines: stderr is no terminal
    assert _state(settings).scored_twice == 0

    again = _import(sample)
    assert again.exit_code == 0, again.output
    assert f"resuming: {now} of {total} rows were stored by an earlier run" in again.output
    summary = re.search(r"stored (\d+) posts \((\d+) already stored, (\d+) not work", again.output)
    assert summary is not None, again.output
    new, skipped, ignored = map(int, summary.groups())
    assert (new + ignored, skipped) == (total - now, now)
    assert _posts(settings) == total
    assert _state(settings) == expected


def test_an_import_run_again_after_it_finished_reads_every_row_and_stores_nothing(
    engine, settings, model, sample
):
    first = _import(sample)
    assert first.exit_code == 0 and "resuming" not in first.output, first.output
    expected = _state(settings)
    again = _import(sample)
    assert again.exit_code == 0, again.output
    assert "resuming" not in again.output
    assert f"stored 0 posts ({_posts(settings)} already stored, 0 not work)" in again.output
    assert _state(settings) == expected


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_bars_on_a_terminal_and_lines_elsewhere():
    steps = [
        ImportProgress(rows=994, read=500, new=480, to_score=300, scored=64, routed=40),
        ImportProgress(rows=994, read=994, new=960, to_score=610, scored=610, routed=960),
    ]
    steps[-1].done = True
    shown = Terminal()
    bars = ProgressDisplay(shown)
    for p in steps:
        bars.update(p)
    bars.close()
    text = shown.getvalue()
    assert "rows stored: 100%" in text and "994/994" in text
    assert "posts scored: 100%" in text and "610/610" in text and "routed=960" in text
    assert "import:" not in text

    logged = io.StringIO()
    lines = ProgressDisplay(logged, every=3600)
    for p in steps:
        lines.update(p)
    # The first update falls inside the interval; the last is always shown.
    assert logged.getvalue().splitlines() == [
        "import: 994/994 rows (960 stored now), 610/610 posts scored, 960 routed, 0s"
    ]
