"""The cold-start rule: no surge from an account with no history; from six hours of its own
traffic, a burst is judged against the busiest whole hour before it, and that traffic itself
opens nothing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bench.surge_bursts import burst_texts
from socialcare.surge.baseline import Baseline, epoch_hour
from socialcare.surge.models import Surge, SurgeAccount
from socialcare.surge.service import COLD_START_HOURS, MIN_HISTORY_HOURS
from tests.factories import make_account
from tests.surge.conftest import observed
from tests.surge.test_detection import SPOTIFY, replay, spotify_rows

T = datetime(2024, 5, 7, 9, 0, tzinfo=UTC)  # a Tuesday


def test_the_peak_is_the_busiest_whole_hour_before_the_one_given():
    base = Baseline()
    counts = {0: 3, 1: 9, 2: 4, 3: 30}  # hour offset from T -> posts
    for offset, n in counts.items():
        for i in range(n):
            base.add(T + timedelta(hours=offset, minutes=i % 60))
    base.advance(epoch_hour(T) + 5)  # hours 0..4 are whole now (4 had none)
    first = epoch_hour(T)
    assert base.peak(before=first + 5) == 30
    assert base.peak(before=first + 3) == 9  # a burst's own hour does not raise its bar
    assert base.peak(before=first + 1) == 3
    assert base.peak(before=first) == 0.0
    assert base.peak(before=first + 5, hours=1) == 0.0  # hour 4: counted, empty
    assert Baseline().peak(before=first) == 0.0


def _burst(session, account, start: datetime, n: int, seed: int):
    rng = random.Random(seed)
    texts = burst_texts("login", n, rng)
    times = sorted(start + timedelta(seconds=rng.triangular(0, 600, 150)) for _ in texts)
    return observed(session, account, texts, times, authors=[f"b{seed}-{i}" for i in range(n)])


def test_no_surge_opens_on_an_account_with_no_history(session, settings):
    account = make_account(session, "NewBrand")
    replay(session, settings, _burst(session, account, T, 80, seed=1))
    assert session.execute(select(Surge)).scalars().all() == []
    state = session.get(SurgeAccount, account.id)
    assert sum(Baseline.from_json(state.baseline).seen) < COLD_START_HOURS < MIN_HISTORY_HOURS


@pytest.mark.skipif(not SPOTIFY.exists(), reason="needs the shared TWCS extract")
def test_after_six_hours_of_its_own_traffic_a_burst_opens_against_the_busiest_hour(
    session, settings
):
    account = make_account(session, "SpotifyCares")
    start = datetime(2017, 11, 14, 9, 0, tzinfo=UTC)
    end = start + timedelta(hours=COLD_START_HOURS + 3)
    day = [r for r in spotify_rows() if start <= r[0] < end]
    texts, times = [t for _, _, t in day], [at for at, _, _ in day]
    normal = observed(session, account, texts, times, authors=[a for _, a, _ in day])
    replay(session, settings, normal)
    # Nine hours of a real account's traffic, judged from the sixth: no surge.
    assert session.execute(select(Surge)).scalars().all() == []
    hourly: dict[int, int] = {}
    for at, _, _ in day:
        hourly[epoch_hour(at)] = hourly.get(epoch_hour(at), 0) + 1
    busiest = max(n for h, n in hourly.items() if h < epoch_hour(end))

    burst_at = end + timedelta(minutes=20)  # its window starts after the last whole hour
    burst = _burst(session, account, burst_at, 60, seed=2)
    replay(session, settings, burst)
    (surge,) = session.execute(select(Surge)).scalars().all()
    assert surge.detected_at - burst_at <= timedelta(minutes=5)
    # Judged against the busiest whole hour so far, not the account's mean hour.
    assert surge.expected_per_hour == pytest.approx(busiest)
    assert busiest > len(day) / (COLD_START_HOURS + 3)
