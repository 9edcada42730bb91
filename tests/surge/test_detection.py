"""The baseline test on real traffic: an injected burst opens a surge within five minutes; the
same account's normal traffic opens none."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from bench.surge_bursts import burst_texts
from socialcare.posts.models import Post
from socialcare.surge.models import Surge, SurgeEvent, SurgePost
from socialcare.surge.service import observe
from tests.conftest import SHARED_DATA
from tests.factories import make_account
from tests.surge.conftest import observed

SPOTIFY = SHARED_DATA / "twcs" / "spotifycares_inbound_15k.csv"
DAY_START = datetime(2017, 11, 14, 14, 0, tzinfo=UTC)
DAY_END = datetime(2017, 11, 14, 18, 0, tzinfo=UTC)
BURST_START = DAY_END + timedelta(minutes=10)


def spotify_rows() -> list[tuple[datetime, str, str]]:
    rows = []
    with SPOTIFY.open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["created_at"]:
                at = datetime.strptime(r["created_at"], "%a %b %d %H:%M:%S %z %Y")
                rows.append((at.astimezone(UTC), r["author_id"], r["text"]))
    return sorted(rows)


def replay(session, settings, posts):
    """Observe posts a minute at a time, as a poller reading once a minute hands them over."""
    by_minute: dict[datetime, list] = {}
    for p in posts:
        by_minute.setdefault(p.created_at.replace(second=0, microsecond=0), []).append(p)
    for minute in sorted(by_minute):
        observe(
            session=session,
            posts=by_minute[minute],
            settings=settings,
            now=minute + timedelta(minutes=1),
        )


@pytest.mark.skipif(not SPOTIFY.exists(), reason="needs the shared TWCS extract")
def test_a_burst_opens_a_surge_in_minutes_and_normal_traffic_none(session, settings):
    account = make_account(session, "SpotifyCares")
    rows = spotify_rows()
    history = [r for r in rows if DAY_START - timedelta(weeks=3) <= r[0] < DAY_START]
    session.execute(
        insert(Post),
        [
            {
                "platform": "x",
                "external_id": f"h{i}",
                "account_id": account.id,
                "author_external_id": author,
                "author_handle": author,
                "text": text,
                "created_at": at,
                "observed_at": at,
            }
            for i, (at, author, text) in enumerate(history)
        ],
    )
    day = [r for r in rows if DAY_START <= r[0] < DAY_END]
    assert len(day) > 50
    normal = observed(
        session,
        account,
        [t for _, _, t in day],
        [at for at, _, _ in day],
        authors=[a for _, a, _ in day],
    )
    replay(session, settings, normal)
    assert session.execute(select(Surge)).scalars().all() == []

    rng = random.Random(5)
    texts = burst_texts("login", 80, rng)
    times = sorted(BURST_START + timedelta(seconds=rng.triangular(0, 600, 150)) for _ in texts)
    burst = observed(session, account, texts, times, authors=[f"b{i}" for i in range(80)])
    replay(session, settings, burst)
    (surge,) = session.execute(select(Surge)).scalars().all()
    assert surge.detected_at - BURST_START <= timedelta(minutes=5)
    assert BURST_START - timedelta(minutes=15) <= surge.started_at <= surge.detected_at
    assert surge.topic == "security" and "log" in surge.title.lower()
    linked = set(session.execute(select(SurgePost.post_id)).scalars())
    burst_ids = {p.post_id for p in burst}
    assert len(linked & burst_ids) >= 0.8 * len(burst_ids)
    assert len(linked - burst_ids) <= 0.1 * len(linked)
    assert surge.post_count == len(linked)
    assert surge.rate_per_hour > 10 * surge.expected_per_hour
    kinds = session.execute(select(SurgeEvent.kind)).scalars().all()
    assert kinds == ["opened"]
