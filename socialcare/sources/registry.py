"""Which MentionSource serves an account: one instance per process and source name."""

from __future__ import annotations

from socialcare.config import Settings, get_settings
from socialcare.errors import ConfigError
from socialcare.sources.base import MentionSource

SOURCE_NAMES = ("replay", "x", "mastodon", "bluesky")


_cache: dict[tuple[str, int], MentionSource] = {}


def _build(name: str, settings: Settings) -> MentionSource:
    if name == "replay":
        from socialcare.sources.replay import ReplaySource

        return ReplaySource(
            speedup=settings.replay_speedup, max_gap_seconds=settings.replay_max_gap_seconds
        )
    if name == "x":
        from socialcare.sources.x import XSource

        return XSource(settings)
    if name == "mastodon":
        from socialcare.sources.mastodon import MastodonSource

        return MastodonSource(settings)
    if name == "bluesky":
        from socialcare.sources.bluesky import BlueskySource

        return BlueskySource(settings)
    raise ConfigError(f"unknown source {name!r}; known: {', '.join(SOURCE_NAMES)}")


def get_source(name: str, settings: Settings | None = None) -> MentionSource:
    """The process's source for name, built on first use with these settings."""
    settings = settings or get_settings()
    key = (name, id(settings))
    if key not in _cache:
        _cache[key] = _build(name, settings)
    return _cache[key]
