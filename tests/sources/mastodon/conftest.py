"""Fixtures of the Mastodon source tests: the API stand-in, a source pointed at it, a customer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from socialcare.sources.mastodon import MastodonSource
from tests.sources.mastodon.support import make_source
from tests.standins.mastodon_api import MastodonStandIn


@pytest.fixture
def api() -> Iterator[MastodonStandIn]:
    standin = MastodonStandIn()
    standin.start()
    yield standin
    standin.stop()
    assert standin.errors == []


@pytest.fixture
def source(api: MastodonStandIn) -> MastodonSource:
    return make_source(api)


@pytest.fixture
def ann(api: MastodonStandIn) -> Any:
    return api.account("ann", domain="other.social", followers=1200)


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    """The source never sleeps (a rate limit raises); the stand-in's threads may (slow answers)."""
    real_sleep = time.sleep

    def guarded(seconds: float) -> None:
        if threading.current_thread() is threading.main_thread():
            raise AssertionError(f"the Mastodon source slept {seconds}s")
        real_sleep(seconds)

    monkeypatch.setattr("time.sleep", guarded)
