"""Text any database stores: what a platform's JSON can carry but PostgreSQL refuses.

JSON strings may hold NUL (PostgreSQL's text and jsonb refuse it) and lone surrogate escapes
(no database encoding accepts them). Both become U+FFFD, so one odd post cannot fail a page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")
MAX_DEPTH = 32


def clean_text(value: object) -> str:
    """A JSON string as text a database stores: NUL and lone surrogates become U+FFFD."""
    if not isinstance(value, str):
        return ""
    return _LONE_SURROGATE_RE.sub("\ufffd", value.replace("\x00", "\ufffd"))


def clean_json(value: Any, depth: int = 0) -> Any:
    """A JSON value with every string (keys too) cleaned; nesting past 32 levels is dropped."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): clean_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v, depth + 1) for v in value]
    return value if isinstance(value, int | float | bool) or value is None else None
