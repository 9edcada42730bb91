"""Helpers of the Mastodon source tests."""

from __future__ import annotations

from typing import Any

from socialcare.config import load_settings
from socialcare.sources.base import AccountRef
from socialcare.sources.mastodon import MastodonSource
from tests.standins.mastodon_api import MastodonStandIn

ACCOUNT = AccountRef(id=1, platform="mastodon", handle="AcmeCare")
TIMEOUT = 0.5


def make_source(api: MastodonStandIn, **overrides: Any) -> MastodonSource:
    values: dict[str, Any] = {
        "MASTODON_API_BASE_URL": api.base_url,
        "MASTODON_ACCESS_TOKEN": api.token,
        "MASTODON_PAGE_SIZE": 40,
        "HTTP_TIMEOUT_SECONDS": TIMEOUT,
    }
    return MastodonSource(load_settings(**{**values, **overrides}))


def queries_to(api: MastodonStandIn, path_end: str) -> list[dict[str, list[str]]]:
    return [q for path, q in api.queries if path.endswith(path_end)]
