"""The Mastodon source against mastodon_mock: an implementation of the Mastodon REST API written
apart from socialcare (a FastAPI server on its own SQLite, tested by its authors against
Mastodon.py), so these tests check the source against someone else's reading of the API, not
only against tests/standins, which was written alongside the client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from mastodon import Mastodon
from mastodon_mock.config import (
    DatabaseConfig,
    MastodonMockConfig,
    RateLimitConfig,
    SeedAccount,
    SeedConfig,
    StreamingConfig,
)
from mastodon_mock.testing import MockServer

from socialcare.config import load_settings
from socialcare.sources.base import AccountRef
from socialcare.sources.mastodon import MastodonSource

# Tokens of the server's seeded accounts (a local test server's, not credentials).
TOKENS = {"AcmeCare": "brand-token", "ann": "ann-token"}
TIMEOUT = 5.0  # a server on SQLite, on a busy machine, may take a while


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    config = MastodonMockConfig(
        database=DatabaseConfig(path=":memory:"),
        seed=SeedConfig(
            accounts=[
                SeedAccount(username=name, display_name=name, access_token=token)
                for name, token in TOKENS.items()
            ]
        ),
        # Its rate limit sends Mastodon's X-RateLimit-* headers; high enough never to refuse.
        ratelimit=RateLimitConfig(enabled=True, limit=100_000, window_seconds=300),
        streaming=StreamingConfig(enabled=False),
    )
    mock = MockServer(config=config).start()
    yield mock
    mock.stop()


@pytest.fixture
def mock(server: MockServer) -> MockServer:
    """The server as seeded, without faults."""
    requests.post(f"{server.base_url}/api/v1/_mock/reset", timeout=10).raise_for_status()
    return server


def client(server: MockServer, name: str) -> Mastodon:
    return Mastodon(
        access_token=TOKENS[name], api_base_url=server.base_url, version_check_mode="none"
    )


@pytest.fixture
def ann(mock: MockServer) -> Mastodon:
    return client(mock, "ann")


@pytest.fixture
def brand(mock: MockServer) -> Mastodon:
    return client(mock, "AcmeCare")


def make_source(server: MockServer, timeout: float = TIMEOUT) -> MastodonSource:
    return MastodonSource(
        load_settings(
            MASTODON_API_BASE_URL=server.base_url,
            MASTODON_ACCESS_TOKEN=TOKENS["AcmeCare"],
            MASTODON_PAGE_SIZE=40,
            HTTP_TIMEOUT_SECONDS=timeout,
        )
    )


@pytest.fixture
def source(mock: MockServer) -> MastodonSource:
    return make_source(mock)


@pytest.fixture
def account() -> AccountRef:
    return AccountRef(id=1, platform="mastodon", handle="AcmeCare")


class LoseAnswers(requests.adapters.HTTPAdapter):
    """Transport that delivers the next `lose` POSTs to the server and then loses their
    answers, as a connection dropped after the server acted (the server's own latency fault
    cannot: it waits before reading the request, so the server never acts)."""

    def __init__(self) -> None:
        super().__init__()
        self.lose = 0

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().send(request, *args, **kwargs)
        if request.method == "POST" and self.lose > 0:
            self.lose -= 1
            response.close()
            raise requests.ConnectionError("Connection aborted: the answer never arrived")
        return response


def fault(server: MockServer, **rule: Any) -> None:
    """One request matching rule["match"] gets rule["effect"] (the server's fault API)."""
    answer = requests.post(
        f"{server.base_url}/api/v1/_mock/faults", json={"count": 1, **rule}, timeout=10
    )
    answer.raise_for_status()
