"""A simulated day of mentions against the X API stand-in over real HTTP (the real tweepy client),
with 20% of requests failing every way X fails: 429 with a reset, 500, 503, timeouts, dropped
connections, malformed JSON, partial errors. The rate budget lives in real Redis, the posts in
PostgreSQL; the poll flow runs as beat would run it (whenever an account is due).

The day is 48 half-hours compressed to a tick each: quiet at night, two busy peaks, and an
outage half-hour whose burst passes the 800-mention window. SOCIALCARE_SOAK=1 (or
SOCIALCARE_DAY_MENTIONS=N) runs the full 10,000; by default 3,000, which keeps every feature of
the day (faults of every kind on every endpoint, budget resets, an overflow filled from search,
replies with unknown outcomes) at under a minute here.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections import Counter

import pytest
from sqlalchemy import func, select

from socialcare import config, flows
from socialcare.cases.models import Reply
from socialcare.cases.outbox import create_reply
from socialcare.cases.work import claim_next, get_agent
from socialcare.db import session_scope, utcnow
from socialcare.flows import InlineRunner
from socialcare.flows.seed import add_agent
from socialcare.ingest.models import IngestionIncident, ReadUsage
from socialcare.posts.models import Account, Post
from socialcare.posts.service import ensure_account
from socialcare.scoring import complaint, sentiment
from socialcare.sources import registry
from tests.conftest import REDIS_TEST_URL, SHARED_DATA
from tests.fakes import CueWordComplaints, CueWordSentiment
from tests.standins.x_api import ALL_FAULTS, MENTIONS_WINDOW, XStandIn

pytestmark = pytest.mark.slow

SOAK = os.environ.get("SOCIALCARE_SOAK") == "1"
MENTIONS = int(os.environ.get("SOCIALCARE_DAY_MENTIONS", "10000" if SOAK else "3000"))
# Mentions per half-hour as shares of the day: night, morning peak, outage burst, evening peak.
SHAPE = [1] * 12 + [4] * 6 + [2] * 4 + [30] + [3] * 9 + [5] * 6 + [1] * 10
# Released at once between two polls: past the 800 mentions X keeps reachable.
BURST = MENTIONS_WINDOW + 200
REPLIES = 40
ROUTE_FIRST = 150  # posts scored and routed into cases (for the agent's replies)
ROUTED = [0]
BRAND = "AcmeCare"


@pytest.fixture
def day(pg_url, tmp_path, monkeypatch):
    source = "spotifycares_inbound_15k.csv" if MENTIONS > 2500 else "twcs_random_5000.csv"
    api = XStandIn(SHARED_DATA / "twcs" / source, brand=BRAND, mentions=MENTIONS, customers=1500)
    api.rate_limit, api.window_seconds = 120, 15  # budgets run out and reset within the day
    api.timeout_after = 1.5
    api.start()
    for key, value in {
        "DATABASE_URL": pg_url,
        "REDIS_URL": f"{REDIS_TEST_URL}/0",
        "REDIS_NAMESPACE": f"test-day-{uuid.uuid4().hex[:8]}",
        "SOCIALCARE_DATA_DIR": str(tmp_path / "var"),
        "X_BEARER_TOKEN": "bearer",
        "X_API_KEY": "k",
        "X_API_SECRET": "s",
        "X_ACCESS_TOKEN": "t",
        "X_ACCESS_TOKEN_SECRET": "ts",
        "X_API_BASE_URL": api.base_url,
        "HTTP_TIMEOUT_SECONDS": "1",
        "POLL_INTERVAL_SECONDS": "1",
        "POLL_INTERVAL_MAX_SECONDS": "1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sentiment, "get_sentiment_model", lambda settings: CueWordSentiment())
    monkeypatch.setattr(complaint, "get_complaint_model", lambda settings: CueWordComplaints())
    config.get_settings.cache_clear()
    registry._cache.clear()
    settings = config.get_settings()
    from tests.conftest import migrated

    engine = migrated(settings)
    with session_scope(settings) as s:
        account_id = ensure_account(s, platform="x", handle=BRAND, source="x", polled=True).id
        add_agent(session=s, handle="ana", display_name="Ana", role="agent", teams=None)
    yield api, settings, account_id
    api.stop()
    engine.dispose()
    registry._cache.clear()
    config.get_settings.cache_clear()


def poll_when_due(settings: config.Settings, account_id: int, runner: InlineRunner) -> None:
    """What beat and a worker do: poll the account if it is due (a failed or rate-limited poll
    sets when it is due again), then score and route what it stored."""
    with session_scope(settings) as s:
        account = s.get(Account, account_id)
        assert account is not None
        due = account.next_poll_at is None or account.next_poll_at <= utcnow()
    if due:
        flows.poll_account(account_id, enqueue=runner, settings=settings)
        # Score and route the first posts, so agents have cases to answer; the rest of the
        # day's scoring is not what this test is about.
        while runner.pending and ROUTED[0] < ROUTE_FIRST:
            step, args = runner.pending.popleft()
            flows.STEPS[step](*args, enqueue=runner, settings=settings)
            ROUTED[0] += len(args[0]) if step == "score_posts" else 0
        runner.pending.clear()
    else:
        time.sleep(0.05)


def reply_to_one(settings: config.Settings, runner: InlineRunner) -> int | None:
    with session_scope(settings) as s:
        agent = get_agent(session=s, handle="ana")
        case = claim_next(session=s, agent=agent)
        if case is None:
            return None
        return create_reply(session=s, case_id=case.id, agent=agent, text=f"On it ({case.id})").id


def settle_reply(settings: config.Settings, reply_id: int, runner: InlineRunner) -> str:
    """Send through the outbox until sent or failed; an unknown outcome is looked up first."""
    state = "queued"
    for _ in range(30):
        if state == "queued":
            with session_scope(settings) as s:
                s.get(Reply, reply_id).next_attempt_at = utcnow()
            state = flows.send_reply(reply_id, enqueue=runner, settings=settings)
        elif state == "unknown":
            state = flows.reconcile_reply(reply_id, enqueue=runner, settings=settings)
        else:
            return state
        runner.pending.clear()
    return state


def test_a_day_of_mentions_with_a_fifth_of_requests_failing_is_ingested_exactly_once(day):
    api, settings, account_id = day
    runner = InlineRunner(settings)
    ROUTED[0] = 0
    api.release(5)
    poll_when_due(settings, account_id, runner)
    api.faults, api.fault_kinds = 0.2, ALL_FAULTS
    started = time.monotonic()
    per_share = (MENTIONS - 5) / sum(SHAPE)
    replies: list[int] = []
    for half_hour, share in enumerate(SHAPE):
        n = max(1, round(share * per_share)) if half_hour < len(SHAPE) - 1 else 10**6
        if share == max(SHAPE):  # the outage burst: more than X's window, whatever the total
            n = max(n, BURST)
        api.release(n)
        tick = time.monotonic() + 0.6
        while time.monotonic() < tick:
            poll_when_due(settings, account_id, runner)
        if half_hour % 4 == 3 and len(replies) < REPLIES:
            for _ in range(4):
                reply_id = reply_to_one(settings, runner)
                if reply_id is not None:
                    replies.append(reply_id)
                    settle_reply(settings, reply_id, runner)
    api.faults = 0.0
    faulty_requests = sum(api.requests.values())  # those made while a fifth were to fail
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with session_scope(settings) as s:
            count = s.execute(select(func.count()).select_from(Post)).scalar_one()
            done = "mentions_pass" not in s.get(Account, account_id).cursors
        if count >= api.released + len(api.creates) and done:
            break
        poll_when_due(settings, account_id, runner)
    busy = time.monotonic() - started

    with session_scope(settings) as s:
        ids = Counter(s.execute(select(Post.external_id)).scalars())
        usage = s.execute(select(ReadUsage)).scalars().all()
        kinds = Counter(s.execute(select(IngestionIncident.kind)).scalars())
        states = Counter(s.get(Reply, r).state for r in replies)
    unique = len(ids)
    billed = sum(u.billed for u in usage)
    print(
        f"\n{api.released} mentions in {busy:.0f}s; requests {dict(api.requests)}; "
        f"faults {dict(api.injected)}; billed {api.billed_total} for {unique} unique posts "
        f"(reads {api.reads}); incidents {dict(kinds)}; replies {dict(states)}"
    )
    assert api.released == MENTIONS
    mentions = {t["id"] for t in api.mentions}
    assert mentions <= set(ids)  # every mention ingested
    assert max(ids.values()) == 1  # once
    assert api.billed_total / unique <= 1.01
    assert billed == api.billed_total  # what we count is what X bills
    assert kinds["window_overflow"] >= 1  # the outage burst passed the window
    # Each request fails with probability 0.2: the faults drawn are binomial, and a share
    # three standard deviations under a fifth fails the run (about 1 in 700 by chance).
    faults = sum(n for kind, n in api.injected.items())
    spread = 3 * math.sqrt(faulty_requests * 0.2 * 0.8)
    assert faults >= 0.2 * faulty_requests - spread, (api.injected, faulty_requests)
    # Faults are drawn at random among the seven kinds: most of them show up in any run.
    assert len({k.split()[0] for k in api.injected}) >= 5, api.injected
    # No reply sent twice; every reply sent once or failed with a reason.
    assert api.duplicate_creates() == {}
    assert len(replies) >= REPLIES // 2 and set(states) <= {"sent", "failed"}
