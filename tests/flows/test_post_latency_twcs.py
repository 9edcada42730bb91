"""Next reply per customer post on real TWCS threads: socialcare's per-brand figures equal those
computed in plain Python from the raw CSV rows (the median to the second)."""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.cases.models import Case
from socialcare.flows.history import HistoryImport
from socialcare.metrics.latency import latency_by
from socialcare.posts.models import Account, Post
from tests.conftest import REPO, SHARED_DATA

HEAD = SHARED_DATA / "twcs" / "twcs_head_1000.csv"
SAMPLE = REPO / "socialcare" / "data" / "twcs_sample.csv"


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {r["tweet_id"]: r for r in csv.DictReader(f)}


def _when(row: dict[str, str]) -> datetime:
    return datetime.strptime(row["created_at"], "%a %b %d %H:%M:%S %z %Y")


def _id(value: str) -> str:
    return value[:-2] if value.endswith(".0") else value


def reference_waits(path: Path, session: Session) -> dict[str, list[float | None]]:
    """Per brand account, each customer tweet's wait for the brand's next reply in its case's
    thread, computed from the raw CSV rows: a brand reply to X is a brand row (inbound False)
    whose in_response_to_tweet_id is X; the thread's replies are those to one of the case's
    customer tweets and those to such a reply; the next is the earliest at or after the tweet
    (None: still unanswered). As in the first-response check beside it, only which tweets form
    a case, and the case's brand account, are read from the database."""
    rows = _rows(path)
    replies_to: dict[str, list[str]] = defaultdict(list)
    for tweet_id, r in rows.items():
        target = _id(r["in_response_to_tweet_id"])
        if r["inbound"] == "False" and target:
            replies_to[target].append(tweet_id)
    members: dict[int, list[str]] = defaultdict(list)
    brand_of: dict[int, str] = {}
    found = session.execute(
        select(Case.id, Post.external_id, Account.handle)
        .join(Case, Case.id == Post.case_id)
        .join(Account, Account.id == Case.account_id)
        .where(Post.is_brand.is_(False))
    )
    for case_id, external_id, handle in found:
        members[case_id].append(external_id)
        brand_of[case_id] = handle
    waits: dict[str, list[float | None]] = defaultdict(list)
    for case_id, tweets in members.items():
        direct = [reply for tweet in tweets for reply in replies_to[tweet]]
        thread = direct + [reply for d in direct for reply in replies_to[d]]
        times = [_when(rows[reply]) for reply in thread]
        for tweet in tweets:
            posted = _when(rows[tweet])
            later = [t for t in times if t >= posted]
            waits[brand_of[case_id]].append(
                (min(later) - posted).total_seconds() if later else None
            )
    return waits


@pytest.mark.parametrize("path", [HEAD, SAMPLE], ids=["twcs_head_1000", "twcs_sample"])
def test_per_brand_median_next_reply_matches_an_independent_computation(
    engine, settings, model, session, path
) -> None:
    HistoryImport([path], settings=settings).run()
    expected = reference_waits(path, session)
    got = {r.group: r for r in latency_by(session, unit="post")}
    assert set(got) == set(expected)
    answered_brands = 0
    for brand, waits in expected.items():
        answered = [w for w in waits if w is not None]
        row = got[brand]
        assert (row.cases, row.answered) == (len(waits), len(answered)), brand
        if not answered:
            assert row.median_seconds is None, brand
            continue
        answered_brands += 1
        # To the second: TWCS times are whole seconds, a median at most a half.
        assert row.median_seconds == statistics.median(answered), brand
        assert row.mean_seconds == pytest.approx(statistics.fmean(answered), abs=1e-6), brand
    assert answered_brands >= 10
    # More than the first response: later posts in cases are measured too.
    assert sum(len(w) for w in expected.values()) > len(set(session.scalars(select(Case.id))))
