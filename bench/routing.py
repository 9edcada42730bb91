"""Scoring and routing transactions: per post against batched, on SQLite and PostgreSQL.

The same real TWCS threads are imported (stored, not scored) into two fresh databases per
dialect; then, with a cue-word scorer standing in for the model (what is measured is the
database work around it, not the model), each database's posts are scored and routed one way:

  per_post  scoring as it was: chunks of SCORE_BATCH_SIZE, each post its own compare-and-set
            UPDATE, prior-unanswered COUNT and Score insert (one transaction per chunk);
            routing one transaction per post (as the routing flow was: the service called with
            one id, then the case's queued acknowledgements)
  batched   the score task as it is: it claims up to SCORE_MAX_BATCH waiting posts, one CAS
            UPDATE ... RETURNING, one grouped count, one insert; routing one transaction per
            ROUTE_BATCH posts

Both modes must end with the same cases (count, and posts per case) or the run fails. Prints
posts/s per step and mode, and batched over per_post, for each dialect, all from one run.

    .venv/bin/python -m bench.routing [--rows 1000] [--file PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FILE = REPO.parent / "shared" / "data" / "twcs" / "twcs_head_1000.csv"
PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


class CueScorer:
    """The tests' cue-word models behind the Scorer interface (no model time)."""

    sentiment_name = "bench:cue-words"
    complaint_name = "bench:complaint-cues"

    def score(self, texts: Sequence[str], *, embeddings: bool = False) -> list[Any]:
        from socialcare.scoring.scorer import PostScores

        out = []
        for text in texts:
            cues = sum(cue in text.lower() for cue in ("never", "still", "worst", "broken"))
            negative = min(0.9, 0.2 + 0.3 * cues)
            probs = {"negative": negative, "neutral": 0.9 - negative, "positive": 0.1}
            out.append(PostScores(probs, min(1.0, cues / 2)))
        return out


def _legacy_score(session: Any, post_ids: Sequence[int], scorer: CueScorer, settings: Any) -> None:
    """The scoring service before batching: per post a CAS UPDATE, a COUNT and a Score row."""
    from sqlalchemy import func, select, update

    from socialcare.db import changed_rows, utcnow
    from socialcare.posts.models import STAGE_INGESTED, STAGE_SCORED, Post, Score
    from socialcare.scoring.service import _score_row

    posts = list(
        session.execute(
            select(Post)
            .where(Post.id.in_(post_ids), Post.stage == STAGE_INGESTED, Post.is_brand.is_(False))
            .order_by(Post.id)
        ).scalars()
    )
    results = scorer.score([p.text for p in posts])
    reference = float(settings.sla_seconds["P2"])
    for post, result in zip(posts, results, strict=True):
        won = changed_rows(
            session.execute(
                update(Post)
                .where(Post.id == post.id, Post.stage == STAGE_INGESTED)
                .values(stage=STAGE_SCORED, next_step_at=utcnow(), attempts=0)
                .execution_options(synchronize_session=False)
            )
        )
        if not won:
            continue
        answered = select(Post.in_reply_to_external_id).where(
            Post.platform == post.platform,
            Post.is_brand.is_(True),
            Post.in_reply_to_external_id.is_not(None),
        )
        prior = session.execute(
            select(func.count()).where(
                Post.account_id == post.account_id,
                Post.author_external_id == post.author_external_id,
                Post.is_brand.is_(False),
                Post.created_at < post.created_at,
                Post.external_id.not_in(answered),
            )
        ).scalar_one()
        session.add(Score(**_score_row(post, result, int(prior), scorer, settings, reference)))
    session.flush()


def _settings(url: str, work: Path) -> Any:
    from socialcare import config, db
    from socialcare.models import Base

    os.environ.update(DATABASE_URL=url, SOCIALCARE_DATA_DIR=str(work))
    config.get_settings.cache_clear()
    settings = config.get_settings()
    engine = db.get_engine(settings)
    Base.metadata.create_all(engine)
    return settings


def _import(settings: Any, path: Path) -> tuple[list[int], list[int]]:
    """Store the file's posts; returns (customer posts to score, brand posts to route)."""
    from sqlalchemy import select

    from socialcare.db import session_scope
    from socialcare.flows.history import HistoryImport
    from socialcare.posts.models import STAGE_INGESTED, Post

    HistoryImport([path], settings=settings).store()
    with session_scope(settings) as s:
        rows = s.execute(
            select(Post.id, Post.is_brand).where(Post.stage == STAGE_INGESTED).order_by(Post.id)
        ).all()
    return [i for i, brand in rows if not brand], [i for i, brand in rows if brand]


def _timed(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def _run(settings: Any, path: Path, mode: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from socialcare.db import session_scope
    from socialcare.flows import InlineRunner, route_posts, score_posts
    from socialcare.flows.base import chunks
    from socialcare.flows.pipeline import _route_batch
    from socialcare.posts.models import STAGE_SCORED, Post

    customers, brands = _import(settings, path)
    scorer = CueScorer()
    runner = InlineRunner(settings)

    def score() -> None:
        if mode == "per_post":
            for chunk in chunks(customers, settings.score_batch_size):
                with session_scope(settings) as s:
                    _legacy_score(s, chunk, scorer, settings)
            return
        for chunk in chunks(customers, settings.score_batch_size):
            score_posts(chunk, enqueue=runner, settings=settings)

    def route() -> None:
        ids = sorted([*customers, *brands])
        if mode == "per_post":
            for post_id in ids:
                _route_batch([post_id], runner, settings)
            return
        route_posts(ids, enqueue=runner, settings=settings)

    scoring_s = _timed(score)
    with session_scope(settings) as s:
        scored = s.execute(select(func.count()).where(Post.stage == STAGE_SCORED)).scalar_one()
    assert scored == len(customers), (scored, len(customers))
    routing_s = _timed(route)
    with session_scope(settings) as s:
        sizes = s.execute(
            select(func.count()).where(Post.case_id.is_not(None)).group_by(Post.case_id)
        ).scalars()
        shape = sorted(int(n) for n in sizes)
    return {
        "customer_posts": len(customers),
        "brand_posts": len(brands),
        "scoring_posts_per_s": round(len(customers) / scoring_s, 1),
        "routing_posts_per_s": round((len(customers) + len(brands)) / routing_s, 1),
        "cases": len(shape),
        "_shape": shape,
    }


def _head(path: Path, rows: int, work: Path) -> Path:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out = work / "threads.csv"
    out.write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    args = parser.parse_args()
    from sqlalchemy import create_engine, text

    from socialcare.scoring import scorer as scorer_module

    scorer_module.get_scorer = lambda settings=None: CueScorer()
    work = Path(tempfile.mkdtemp(prefix="sc-bench-routing-"))
    path = _head(args.file, args.rows, work)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    report: dict[str, Any] = {"rows": args.rows}
    created: list[str] = []
    try:
        for dialect in ("sqlite", "postgresql"):
            results = {}
            for mode in ("per_post", "batched"):
                if dialect == "sqlite":
                    url = f"sqlite:///{work / f'{mode}.db'}"
                else:
                    name = f"sc_bench_{uuid.uuid4().hex[:10]}"
                    with admin.connect() as conn:
                        conn.execute(text(f'CREATE DATABASE "{name}"'))
                    created.append(name)
                    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
                results[mode] = _run(_settings(url, work), path, mode)
            same = results["per_post"].pop("_shape") == results["batched"].pop("_shape")
            assert same, f"{dialect}: the two modes made different cases"
            per, bat = results["per_post"], results["batched"]
            report[dialect] = {
                **results,
                "scoring_batched_over_per_post": round(
                    bat["scoring_posts_per_s"] / per["scoring_posts_per_s"], 2
                ),
                "routing_batched_over_per_post": round(
                    bat["routing_posts_per_s"] / per["routing_posts_per_s"], 2
                ),
            }
    finally:
        from socialcare import db

        db._engine_for.cache_clear()
        with admin.connect() as conn:
            for name in created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
