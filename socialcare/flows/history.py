"""A history import: TWCS files stored page by page, each page scored and routed before the next.

Storing and scoring interleave, so what a big file leaves in memory is its parsed rows and one
page of work, never a backlog of every post waiting to be scored.

Resumable. The import's feed account records which files it imports (path, size, modification
time) and, in the same transaction as each page's rows, how many rows are stored. Run again
after an interrupt (Ctrl-C, a kill, a crash), an import of the same files skips the rows already
stored, first finishing their posts still waiting to be scored or routed. Scoring claims each
post with a compare-and-set on its stage (scoring.service), so a post is never scored twice; a
step cut short is one rolled-back transaction, redone whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from socialcare.config import Settings, get_settings
from socialcare.db import session_scope
from socialcare.flows.base import chunks
from socialcare.flows.pipeline import score_posts
from socialcare.posts.models import STAGE_INGESTED, STAGE_ROUTED, STAGE_SCORED, Account, Post
from socialcare.posts.service import ingest_posts, store_cursors
from socialcare.sources import twcs
from socialcare.sources.base import IncomingPost

PAGE_ROWS = 500  # rows stored per transaction, then scored and routed
WAITING = (STAGE_INGESTED, STAGE_SCORED)


@dataclass
class ImportProgress:
    """Where an import stands; counts are of this run unless named otherwise."""

    rows: int  # rows of the files
    read: int = 0  # rows done: stored now, found stored, or stored by an earlier run
    resumed_at: int = 0  # rows an earlier, interrupted run of this import had stored
    new: int = 0  # posts stored now
    duplicates: int = 0  # rows found stored (those of an interrupted run included)
    ignored: int = 0  # stored rows that are not work (retweets, brand broadcasts)
    to_score: int = 0  # customer posts found waiting to be scored
    scored: int = 0
    routed: int = 0  # posts that reached their case (customer posts and brand replies)
    batches: int = 0  # scoring and routing steps run
    done: bool = False


Report = Callable[[ImportProgress], None]


def import_key(files: Sequence[str | Path]) -> list[list[Any]]:
    """What identifies an import: each file's path, size and modification time."""
    key: list[list[Any]] = []
    for f in files:
        stat = Path(f).resolve().stat()
        key.append([str(Path(f).resolve()), stat.st_size, stat.st_mtime_ns])
    return key


class HistoryImport:
    """One run of an import of TWCS files; `progress` tells how far it got, even if cut short."""

    def __init__(
        self,
        files: Sequence[str | Path],
        *,
        settings: Settings | None = None,
        report: Report | None = None,
        page_rows: int = PAGE_ROWS,
    ) -> None:
        self.files = [Path(f) for f in files]
        self.settings = settings or get_settings()
        self.report = report or (lambda _progress: None)
        self.page_rows = page_rows
        self.progress = ImportProgress(rows=0)
        self.replaced: tuple[str, ...] = ()

    def run(self) -> ImportProgress:
        """Store, score and route every row not done yet; returns the final progress."""
        return self._pages(finish=True)

    def store(self) -> ImportProgress:
        """Store every row not stored yet and score or route none of them: their posts wait
        with their next step due, for the sweep (or a benchmark's own steps) to take up."""
        return self._pages(finish=False)

    def _pages(self, *, finish: bool) -> ImportProgress:
        from socialcare.flows import InlineRunner

        # Every file is read whole before anything is stored: a file that is not TWCS CSV ends
        # the import with SourceError and leaves the database as it was.
        loaded = twcs.load(self.files)
        posts, self.replaced = loaded.posts, loaded.replaced
        feed_id, start = self._begin(len(posts))
        progress = self.progress = ImportProgress(
            rows=len(posts), read=start, resumed_at=start, duplicates=start
        )
        runner = InlineRunner(self.settings)
        self.report(progress)
        # The pages an interrupted run stored: finish their posts still waiting, in order.
        for first in range(0, start if finish else 0, self.page_rows):
            self._finish(posts[first : min(start, first + self.page_rows)], runner)
        for first in range(start, len(posts), self.page_rows):
            page = posts[first : first + self.page_rows]
            self._store(feed_id, page, first + len(page))
            self.report(progress)
            if finish:
                self._finish(page, runner)
        self._end(feed_id)
        progress.done = True
        self.report(progress)
        return progress

    def _begin(self, rows: int) -> tuple[int, int]:
        """The feed account of these files, and the row to start at: where an unfinished
        import of the same file versions stopped, else the first."""
        from socialcare.flows.seed import ensure_replay_feed

        key = import_key(self.files)
        with session_scope(self.settings) as session:
            feed = ensure_replay_feed(session=session, files=self.files, speedup=1.0)
            state = dict((feed.config or {}).get("import") or {})
            resume = state.get("key") == key and not state.get("done")
            start = min(rows, int((feed.cursors or {}).get("position", 0))) if resume else 0
            if not resume:
                feed.cursors = {}
            feed.config = {
                **feed.config,
                "polled": False,
                "instant": True,
                "import": {"key": key, "done": False},
            }
            return int(feed.id), start

    def _end(self, feed_id: int) -> None:
        with session_scope(self.settings) as session:
            feed = session.get(Account, feed_id)
            assert feed is not None
            feed.config = {**feed.config, "import": {**feed.config["import"], "done": True}}

    def _store(self, feed_id: int, page: Sequence[IncomingPost], position: int) -> None:
        """One page's rows and the position after them, in one transaction."""
        progress = self.progress
        with session_scope(self.settings) as session:
            feed = session.get(Account, feed_id)
            assert feed is not None
            stored = ingest_posts(
                session=session,
                account=feed,
                posts=page,
                observed_at=None,
                grace_seconds=self.settings.step_grace_seconds,
            )
            # The cursors a replay of these files keeps (its clock at the page's last post).
            cursors = {
                **(feed.cursors or {}),
                "position": position,
                "virtual_now": page[-1].created_at.isoformat(),
                "wall": datetime.now(UTC).isoformat(),
            }
            store_cursors(session=session, account=feed, cursors=cursors)
        progress.new += len(stored.to_score) + len(stored.to_link)
        progress.duplicates += stored.duplicates
        progress.ignored += stored.ignored
        progress.read = position

    def _finish(self, page: Sequence[IncomingPost], runner: Any) -> None:
        """Score and route the page's posts still waiting (stored now or by an earlier run)."""
        progress, settings = self.progress, self.settings
        with session_scope(settings) as session:
            waiting = session.execute(
                select(Post.id, Post.stage, Post.is_brand).where(
                    Post.platform == twcs.PLATFORM,
                    Post.external_id.in_([p.external_id for p in page]),
                    Post.stage.in_(WAITING),
                )
            ).all()
        if not waiting:
            return
        to_score = sorted(i for i, stage, brand in waiting if stage == STAGE_INGESTED and not brand)
        to_route = sorted(i for i, stage, brand in waiting if stage == STAGE_SCORED or brand)
        progress.to_score += len(to_score)
        self.report(progress)
        for chunk in chunks(to_score, settings.score_batch_size):
            progress.scored += score_posts(chunk, enqueue=runner, settings=settings)
            progress.batches += 1 + runner.drain()  # the routing it handed on
            self.report(progress)
        # Scored by an earlier run, and brand replies: after the page's customer posts, so a
        # reply finds the case of the post it answers.
        if to_route:
            runner("route_posts", to_route)
            progress.batches += runner.drain()
        with session_scope(settings) as session:
            progress.routed += session.execute(
                select(func.count()).where(
                    Post.id.in_([row[0] for row in waiting]), Post.stage == STAGE_ROUTED
                )
            ).scalar_one()
        self.report(progress)
