"""What the platform parsers share: reading fields of untrusted JSON, ISO times, and the text
reduction that tells a reply already on the platform from a different one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from socialcare.posts.storable import clean_text

MAX_TIME_CHARS = 64
# Leading @mentions a platform or a source may put before a reply: X's @name, Mastodon's
# @name@instance, Bluesky's @handle.domain.
_LEADING_MENTIONS_RE = re.compile(r"^(?:@[\w.-]+(?:@[\w.-]+)?\s+)+")
_URL_RE = re.compile(r"https?://\S+")
_SPACE_RE = re.compile(r"\s+")


def as_mapping(value: object) -> Mapping[str, Any]:
    """A JSON object field; a field of any other type counts as absent (an empty object)."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: object) -> list[Any]:
    """A JSON array field; a field of any other type counts as absent (an empty array)."""
    return value if isinstance(value, list) else []


def as_count(value: object) -> int | None:
    """A count field: a non-negative integer (a boolean is not one), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def iso_time(value: object) -> datetime | None:
    """A time as an aware UTC datetime (an ISO 8601 string of at most 64 characters, or a
    datetime); a time without a zone is taken as UTC; anything else is None."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value and len(value) <= MAX_TIME_CHARS:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def comparable_text(text: str) -> str:
    """A reply's text reduced for matching what the platform shows: leading @mentions dropped
    (a source or the platform may prepend them), links masked (X rewrites them to t.co),
    whitespace collapsed."""
    text = _SPACE_RE.sub(" ", clean_text(text)).strip()
    text = _LEADING_MENTIONS_RE.sub("", text + " ").strip()
    return _URL_RE.sub("<link>", text)
