"""Scoring in batches: a task scores its own posts and other waiting ones up to SCORE_MAX_BATCH in
one transaction, with one compare-and-set, one grouped count and one insert; two workers never
score (nor run the model on) one post twice (both databases)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update

from socialcare.db import session_scope
from socialcare.flows import InlineRunner, score_posts
from socialcare.posts.models import STAGE_INGESTED, STAGE_SCORED, Post, Score
from socialcare.scoring import scorer as scorer_module
from socialcare.scoring.scorer import PostScores
from socialcare.scoring.service import claim_waiting, score_claimed
from tests.factories import T0, make_account, make_post
from tests.fakes import CueWordComplaints, CueWordSentiment


class RecordingScorer:
    """Cue-word scores, recording every text the model was asked for; `hold` runs inside each
    call (while the caller's transaction is open)."""

    sentiment_name = "test:cue-words"
    complaint_name = "test:complaint-cues"

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.hold: Any = None
        self._sentiment = CueWordSentiment()
        self._complaint = CueWordComplaints()

    def score(self, texts: Sequence[str], *, embeddings: bool = False) -> list[PostScores]:
        self.texts.extend(texts)
        if self.hold is not None:
            self.hold()
        probs = self._sentiment.predict(texts)
        return [
            PostScores(p, c) for p, c in zip(probs, self._complaint.predict(texts), strict=True)
        ]


@pytest.fixture
def scorer(monkeypatch: pytest.MonkeyPatch) -> RecordingScorer:
    fake = RecordingScorer()
    monkeypatch.setattr(scorer_module, "get_scorer", lambda settings=None: fake)
    return fake


@pytest.fixture
def commits(engine: Any) -> Iterator[list[int]]:
    seen: list[int] = []

    def count(conn: Any) -> None:
        seen.append(1)

    event.listen(engine, "commit", count)
    yield seen
    event.remove(engine, "commit", count)


def _waiting(settings: Any, n: int) -> list[int]:
    """n customer posts waiting for scoring, ingested one a second (the first has waited longest),
    and a brand post waiting for routing."""
    ids = []
    with session_scope(settings) as s:
        account = make_account(s)
        for i in range(n):
            at = T0 + timedelta(seconds=i)
            post = make_post(
                s,
                account,
                f"still waiting for my refund {i}",
                created_at=at,
                stage=STAGE_INGESTED,
                next_step_at=at + timedelta(minutes=1),
            )
            ids.append(post.id)
        make_post(s, account, "we're on it", is_brand=True, stage=STAGE_INGESTED, next_step_at=T0)
    return ids


def test_a_task_scores_its_own_posts_then_the_longest_waiting_up_to_the_bound(
    engine, settings, db_url, scorer, commits, monkeypatch
):
    ids = _waiting(settings, 30)
    monkeypatch.setattr(settings, "score_max_batch", 12)
    monkeypatch.setattr(settings, "score_batch_size", 5)
    runner = InlineRunner(settings)
    commits.clear()
    assert score_posts([ids[20], ids[25]], enqueue=runner, settings=settings) == 12
    # PostgreSQL: one transaction, its rows locked through the model pass; SQLite: a short
    # read and a short write around the model pass (its transactions lock the whole database).
    assert len(commits) == (2 if db_url.startswith("sqlite") else 1)
    expected = {ids[20], ids[25], *ids[:10]}
    with session_scope(settings) as s:
        scored = set(s.execute(select(Post.id).where(Post.stage == STAGE_SCORED)).scalars())
        assert scored == expected
        rows = s.execute(select(Score.post_id, Score.model)).all()
        assert sorted(r[0] for r in rows) == sorted(expected)
        assert {r[1] for r in rows} == {scorer.sentiment_name}
        assert s.execute(select(Post.stage).where(Post.is_brand.is_(True))).scalar_one() == (
            STAGE_INGESTED
        )
    assert [step for step, _ in runner.pending] == ["route_posts"]
    assert sorted(runner.pending[0][1][0]) == sorted(expected)
    assert len(scorer.texts) == 12  # in model batches of SCORE_BATCH_SIZE
    # The next task finds its own posts scored and takes the next longest-waiting ones.
    assert score_posts([ids[20]], enqueue=runner, settings=settings) == 12
    with session_scope(settings) as s:
        scored = set(s.execute(select(Post.id).where(Post.stage == STAGE_SCORED)).scalars())
        assert scored == expected | set(ids[10:20]) | {ids[21], ids[22]}


def test_repeat_contacts_are_counted_per_post_in_one_batch(engine, settings, scorer):
    """Each post counts its author's earlier posts that no brand post answers, whether those
    are scored already or in the same batch."""
    with session_scope(settings) as s:
        account = make_account(s)
        posts = [
            make_post(
                s,
                account,
                f"hello? {i}",
                author_handle="repeat",
                created_at=T0 + timedelta(minutes=i),
                stage=STAGE_INGESTED,
            )
            for i in range(4)
        ]
        make_post(s, account, "hi!", is_brand=True, in_reply_to=posts[1])
        other = make_post(s, account, "me too", created_at=T0, stage=STAGE_INGESTED)
        ids = [p.id for p in posts]
        other_id = other.id
    with session_scope(settings) as s:
        s.execute(update(Post).where(Post.id == ids[0]).values(stage=STAGE_SCORED))
    score_posts([*ids[1:], other_id], enqueue=InlineRunner(settings), settings=settings)
    with session_scope(settings) as s:
        details = {
            score.post_id: next(
                r["detail"] for r in score.reasons if r["signal"] == "repeat_contact"
            )
            for score in s.execute(select(Score)).scalars()
        }
    # posts[0] was scored elsewhere; posts[1] is answered, so it never counts.
    assert details == {
        ids[1]: "1 earlier unanswered",
        ids[2]: "1 earlier unanswered",
        ids[3]: "2 earlier unanswered",
        other_id: "0 earlier unanswered",
    }


def test_a_post_scored_meanwhile_gets_no_second_score(engine, settings, scorer):
    ids = _waiting(settings, 4)
    with session_scope(settings) as s:
        claimed = claim_waiting(session=s, post_ids=ids, limit=None)
        s.execute(update(Post).where(Post.id == ids[1]).values(stage=STAGE_SCORED))
        won = score_claimed(session=s, posts=claimed, scorer=scorer, settings=settings)
    assert won == [ids[0], ids[2], ids[3]]
    with session_scope(settings) as s:
        assert sorted(s.execute(select(Score.post_id)).scalars()) == sorted(won)


def test_two_workers_at_once_never_score_one_post_twice(
    engine, settings, db_url, scorer, monkeypatch
):
    """Worker A claims its posts and the longest-waiting others, then sits in the model. Worker
    B, asked for some of A's posts, passes over them (PostgreSQL: they are locked) or finds them
    scored (SQLite: it waits for A's write lock) and scores the rest. No text reaches the model
    twice and every post has one score."""
    ids = _waiting(settings, 60)
    monkeypatch.setattr(settings, "score_max_batch", 40)
    a_in_model, b_done = threading.Event(), threading.Event()
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def hold() -> None:
        if threading.current_thread().name != "A":
            return
        a_in_model.set()
        if db_url.startswith("postgresql"):
            # B runs its whole task while A holds its rows.
            assert b_done.wait(30), "B waited for A's rows instead of passing over them"

    scorer.hold = hold

    def work(name: str, own: list[int], start: threading.Event | None) -> None:
        try:
            if start is not None:
                assert start.wait(30)
            results[name] = score_posts(own, enqueue=InlineRunner(settings), settings=settings)
        except BaseException as exc:
            errors.append(exc)
        finally:
            if name == "B":
                b_done.set()

    a = threading.Thread(target=work, args=("A", ids[:10], None), name="A")
    b = threading.Thread(target=work, args=("B", ids[30:40], a_in_model), name="B")
    a.start()
    b.start()
    a.join(60)
    b.join(60)
    assert errors == []
    assert results == {"A": 40, "B": 20}
    assert Counter(Counter(scorer.texts).values()) == Counter({1: 60})
    with session_scope(settings) as s:
        scored = Counter(s.execute(select(Score.post_id)).scalars())
        assert scored == Counter(dict.fromkeys(ids, 1))


def test_on_sqlite_nobody_waits_behind_a_model_batch(engine, settings, db_url, scorer):
    """While a scorer is in the model, another writer (the web app, a reply) commits at once:
    the batch holds no database lock then, only the scorers' own lock file."""
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL locks rows, not the database: covered by the two-worker test")
    ids = _waiting(settings, 5)
    wrote: list[float] = []

    def write_meanwhile() -> None:
        started = time.monotonic()
        with session_scope(settings) as s:
            s.execute(update(Post).where(Post.id == ids[0]).values(attempts=Post.attempts))
        wrote.append(time.monotonic() - started)

    scorer.hold = write_meanwhile
    assert score_posts(ids, enqueue=InlineRunner(settings), settings=settings) == 5
    assert wrote and wrote[0] < 2.0  # not the busy timeout: it did not wait for the scorer
