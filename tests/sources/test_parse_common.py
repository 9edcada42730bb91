"""The helpers the X, Mastodon and Bluesky parsers share: one copy, the same answers for all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from socialcare.sources import bluesky_parse, mastodon_parse, x_parse
from socialcare.sources.parse_common import as_count, as_list, as_mapping, comparable_text, iso_time


def test_every_parser_matches_replies_with_the_same_reduction() -> None:
    assert x_parse.comparable_text is comparable_text
    assert mastodon_parse.comparable_text is comparable_text
    assert bluesky_parse.comparable_text is comparable_text
    assert bluesky_parse.parse_time is iso_time


@pytest.mark.parametrize(
    "prefix", ["@alice ", "@alice @bob ", "@ann@mastodon.example ", "@ann.bsky.social  "]
)
def test_leading_mentions_of_any_platform_are_dropped(prefix: str) -> None:
    assert comparable_text(f"{prefix}Thanks,\nsee https://t.co/x ") == "Thanks, see <link>"


def test_reduction_keeps_what_differs() -> None:
    assert comparable_text("see you") != comparable_text("see yo")
    assert comparable_text("thanks @alice") == "thanks @alice"  # only leading mentions go
    assert comparable_text("a\x00b") == "a\ufffdb"  # as stored: NUL becomes U+FFFD


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-02T10:00:00Z", datetime(2026, 3, 2, 10, tzinfo=UTC)),
        ("2026-03-02T12:00:00+02:00", datetime(2026, 3, 2, 10, tzinfo=UTC)),
        ("2026-03-02T10:00:00", datetime(2026, 3, 2, 10, tzinfo=UTC)),
        (
            datetime(2026, 3, 2, 11, tzinfo=timezone(timedelta(hours=1))),
            datetime(2026, 3, 2, 10, tzinfo=UTC),
        ),
        ("2026-03-02T10:00:00Z" + " " * 50, None),  # longer than any real time
        ("yesterday", None),
        ("", None),
        (1772445600, None),
        (None, None),
    ],
)
def test_iso_times_are_aware_utc_or_none(value: object, expected: datetime | None) -> None:
    parsed = iso_time(value)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "mapping", "items", "count"),
    [
        ({"a": 1}, {"a": 1}, [], None),
        ([1, 2], {}, [1, 2], None),
        (3, {}, [], 3),
        (0, {}, [], 0),
        (-1, {}, [], None),
        (True, {}, [], None),
        ("3", {}, [], None),
        (None, {}, [], None),
    ],
)
def test_json_fields_of_the_wrong_type_count_as_absent(
    value: object, mapping: dict[str, Any], items: list[Any], count: int | None
) -> None:
    assert as_mapping(value) == mapping
    assert as_list(value) == items
    assert as_count(value) == count
