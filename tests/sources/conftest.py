"""Fixtures of the X ingestion tests: the X API stand-in and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from socialcare import config
from socialcare.db import session_scope
from socialcare.posts.service import ensure_account
from socialcare.sources import registry
from tests.conftest import SHARED_DATA
from tests.standins.x_api import XStandIn

BRAND = "AcmeCare"


@pytest.fixture
def api() -> Iterator[XStandIn]:
    standin = XStandIn(
        SHARED_DATA / "twcs" / "twcs_random_5000.csv", brand=BRAND, mentions=2500, customers=400
    )
    standin.start()
    yield standin
    standin.stop()


@pytest.fixture
def x(settings, engine, api, monkeypatch) -> Iterator[tuple[config.Settings, int]]:
    """Settings for the stand-in (page size 100, no Redis: the in-process budget) and the
    brand's account."""
    for key, value in {
        "X_BEARER_TOKEN": "bearer",
        "X_API_KEY": "k",
        "X_API_SECRET": "s",
        "X_ACCESS_TOKEN": "t",
        "X_ACCESS_TOKEN_SECRET": "ts",
        "X_API_BASE_URL": api.base_url,
        "HTTP_TIMEOUT_SECONDS": "2",
        "POLL_INTERVAL_SECONDS": "60",
    }.items():
        monkeypatch.setenv(key, value)
    config.get_settings.cache_clear()
    registry._cache.clear()
    s = config.get_settings()
    with session_scope(s) as session:
        account_id = ensure_account(session, platform="x", handle=BRAND, source="x", polled=True).id
    yield s, account_id
    registry._cache.clear()
