"""Rate-limit budgets: in Redis (shared by every worker) and in the process (no Redis)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from socialcare.ingest.policy import next_interval
from socialcare.sources.base import RateWindow
from socialcare.sources.budget import (
    FailSafeBudget,
    MemoryBudget,
    RateBudget,
    RedisBudget,
    window_from_headers,
)
from tests.conftest import REDIS_TEST_URL

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RESET = NOW + timedelta(minutes=15)


@pytest.fixture(params=["redis", "memory"])
def budget(request: pytest.FixtureRequest) -> Iterator[RateBudget]:
    if request.param == "memory":
        yield MemoryBudget()
        return
    client = redis.Redis.from_url(f"{REDIS_TEST_URL}/0")
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    yield RedisBudget(client, namespace)
    for key in client.scan_iter(f"{namespace}:*"):
        client.delete(key)
    client.close()


def test_headers_become_a_window_and_junk_headers_none() -> None:
    headers = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "3"}
    assert window_from_headers({**headers, "x-rate-limit-reset": str(int(RESET.timestamp()))}) == (
        RateWindow(450, 3, RESET)
    )
    assert window_from_headers({**headers, "x-rate-limit-reset": "soon"}) is None
    assert window_from_headers({}) is None
    # Digits, but a time past the calendar's end; digits of another script; a huge number.
    for reset in ("999999999999", "١٧٠٠٠٠٠٠٠٠", "9" * 5000):
        assert window_from_headers({**headers, "x-rate-limit-reset": reset}) is None
    assert (
        window_from_headers({**headers, "x-rate-limit-remaining": "-1", "x-rate-limit-reset": "1"})
        is None
    )


def test_a_spent_window_refuses_until_its_reset_and_a_new_window_allows(budget) -> None:
    budget.record(1, "mentions", RateWindow(450, 1, RESET))
    assert budget.take(1, "mentions", NOW, shared=False) is None
    assert budget.take(1, "mentions", NOW, shared=False) == RESET
    assert budget.take(1, "mentions", RESET + timedelta(seconds=1), shared=False) is None


def test_an_older_answer_never_raises_the_remaining_count_within_a_window(budget) -> None:
    budget.record(1, "mentions", RateWindow(450, 10, RESET))
    budget.record(1, "mentions", RateWindow(450, 40, RESET))
    assert budget.window(1, "mentions") == RateWindow(450, 10, RESET)
    later = RESET + timedelta(minutes=15)
    budget.record(1, "mentions", RateWindow(450, 449, later))
    assert budget.window(1, "mentions") == RateWindow(450, 449, later)


def test_accounts_share_the_app_limit_fairly(budget) -> None:
    for account in (1, 2, 3):
        budget.record(account, "mentions", RateWindow(9, 9, RESET))
        budget.share(account, "mentions", NOW, shared=True)  # all three are active
    granted = {a: 0 for a in (1, 2, 3)}
    for _ in range(6):
        for account in (1, 2, 3):
            granted[account] += budget.take(account, "mentions", NOW, shared=True) is None
    assert granted == {1: 3, 2: 3, 3: 3}


def test_a_user_limit_is_not_divided_among_accounts(budget) -> None:
    for account in (1, 2):
        budget.record(account, "create", RateWindow(4, 4, RESET))
        budget.share(account, "create", NOW, shared=False)
    assert all(budget.take(1, "create", NOW, shared=False) is None for _ in range(4))
    assert budget.take(1, "create", NOW, shared=False) == RESET


def test_two_namespaces_on_one_redis_do_not_see_each_others_budgets() -> None:
    client = redis.Redis.from_url(f"{REDIS_TEST_URL}/0")
    one, two = (RedisBudget(client, f"test-{uuid.uuid4().hex[:8]}") for _ in range(2))
    one.record(1, "mentions", RateWindow(450, 0, RESET))
    assert two.window(1, "mentions") is None
    assert two.take(1, "mentions", NOW, shared=True) is None
    for budget in (one, two):
        for key in client.scan_iter(f"{budget.prefix}:*"):
            client.delete(key)
    client.close()


def test_a_redis_that_does_not_answer_degrades_to_the_process_budget() -> None:
    dead = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    budget = FailSafeBudget(RedisBudget(dead, "test"))
    budget.record(1, "mentions", RateWindow(450, 1, RESET))
    assert budget.take(1, "mentions", NOW, shared=False) is None
    assert budget.take(1, "mentions", NOW, shared=False) == RESET


@pytest.mark.parametrize(
    ("current", "found", "floor", "expected"),
    [
        (60, 100, 0, 15),  # a full page: the shortest interval
        (60, 10, 0, 30),  # mentions coming: halved
        (60, 0, 0, 90),  # quiet: half as long again
        (280, 0, 0, 300),  # never past the longest
        (20, 0, 0, 30),
        (60, 100, 40, 40),  # never below the budget's floor
    ],
)
def test_the_next_interval_follows_the_flow_within_its_bounds_and_the_budget(
    current, found, floor, expected
) -> None:
    assert next_interval(current, found, page_size=100, bounds=(15, 300), floor=floor) == expected


def test_mastodon_and_bluesky_workers_share_the_accounts_window_through_redis() -> None:
    from socialcare.config import Settings
    from socialcare.errors import RateLimited
    from socialcare.sources.budget import AccountBudget

    namespace = f"test-{uuid.uuid4().hex[:8]}"
    settings = Settings(REDIS_URL=f"{REDIS_TEST_URL}/0", REDIS_NAMESPACE=namespace)
    reset = datetime.now(UTC) + timedelta(minutes=5)
    one, two = AccountBudget(settings, "Mastodon"), AccountBudget(settings, "Mastodon")
    one.account_id = two.account_id = 7
    one.record(RateWindow(300, 2, reset))  # an answer one worker saw
    two.take("notifications")  # another worker spends the last two requests
    one.take("statuses")
    with pytest.raises(RateLimited) as caught:
        two.take("context of 12")
    assert caught.value.retry_after == reset.replace(microsecond=0)
    assert "Mastodon context of 12" in str(caught.value)
    other = AccountBudget(settings, "Bluesky")
    other.account_id = 8
    other.take("listNotifications")  # another account's window is its own
    client = redis.Redis.from_url(f"{REDIS_TEST_URL}/0")
    for key in client.scan_iter(f"{namespace}:*"):
        client.delete(key)
    client.close()
