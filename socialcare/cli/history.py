"""`socialcare import twcs`: a history import with its progress on stderr, resumable after Ctrl-C.

On a terminal, progress is two bars (rows stored; posts scored, with those routed); otherwise a
plain line every few seconds, so a log shows it too. Standard output gets the summary only.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import typer
from tqdm import tqdm

from socialcare.flows.history import PAGE_ROWS, HistoryImport, ImportProgress

PROGRESS_SECONDS = 10.0  # between two plain progress lines
# Exit codes of an import stopped by a signal, as a shell reports them.
INTERRUPTED: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


def progress_line(p: ImportProgress, elapsed: float) -> str:
    return (
        f"import: {p.read}/{p.rows} rows ({p.new} stored now), {p.scored}/{p.to_score} posts "
        f"scored, {p.routed} routed, {elapsed:.0f}s"
    )


class ProgressDisplay:
    """Shows an import's progress on a stream: bars on a terminal, else periodic lines."""

    def __init__(self, stream: TextIO, every: float = PROGRESS_SECONDS) -> None:
        self.stream = stream
        self.every = every
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.last_line = self.started
        self.bars: tuple[Any, Any] | None = None
        self.noted_resume = False

    def update(self, p: ImportProgress) -> None:
        if p.resumed_at and not self.noted_resume:
            self.noted_resume = True
            print(
                f"resuming: {p.resumed_at} of {p.rows} rows were stored by an earlier run "
                "(skipped; their posts still waiting are finished first)",
                file=self.stream,
                flush=True,
            )
        if self.tty:
            self._bars(p)
            return
        now = time.monotonic()
        if p.done or now - self.last_line >= self.every:
            self.last_line = now
            print(progress_line(p, now - self.started), file=self.stream, flush=True)

    def _bars(self, p: ImportProgress) -> None:
        if self.bars is None:
            rows = tqdm(
                total=p.rows, initial=p.read, desc="rows stored", unit="row", file=self.stream
            )
            posts = tqdm(total=p.to_score, desc="posts scored", unit="post", file=self.stream)
            self.bars = (rows, posts)
        rows, posts = self.bars
        rows.update(p.read - rows.n)
        posts.total = max(p.to_score, p.scored)
        posts.set_postfix(routed=p.routed, refresh=False)
        posts.update(p.scored - posts.n)

    def close(self) -> None:
        if self.bars is not None:
            for bar in self.bars:
                bar.close()
            self.bars = None


def run_import(
    files: list[Path], *, progress_seconds: float = PROGRESS_SECONDS, page_rows: int = PAGE_ROWS
) -> None:
    """Import the files, showing progress; Ctrl-C (or SIGTERM) stops it resumably."""
    display = ProgressDisplay(sys.stderr, every=progress_seconds)
    job = HistoryImport(files, report=display.update, page_rows=page_rows)
    caught: list[int] = []

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        caught.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in INTERRUPTED}
    try:
        p = job.run()
    except KeyboardInterrupt:
        display.close()
        p = job.progress
        typer.echo(
            f"interrupted at row {p.read} of {p.rows} ({p.new} posts stored, {p.scored} scored, "
            f"{p.routed} routed): run the same command again to resume; rows stored are "
            "skipped and their posts finished, none scored twice",
            err=True,
        )
        raise typer.Exit(INTERRUPTED[caught[0] if caught else signal.SIGINT]) from None
    finally:
        display.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo(f"stored {p.new} posts ({p.duplicates} already stored, {p.ignored} not work)")
    typer.echo(
        f"done: {p.batches} batches scored and routed ({p.scored} posts scored, {p.routed} routed)"
    )
    if job.replaced:
        shown = ", ".join(job.replaced[:5]) + (", ..." if len(job.replaced) > 5 else "")
        typer.echo(
            f"note: {len(job.replaced)} rows had NUL or bytes that are not UTF-8, stored as "
            f"U+FFFD (tweet ids {shown})"
        )
