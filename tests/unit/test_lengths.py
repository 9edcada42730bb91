"""Reply lengths as each platform counts them."""

from __future__ import annotations

import pytest

from socialcare.cases.lengths import length, rule_for

CASES = [
    ("x", "hello", 5),
    ("x", "see https://example.com/a/very/long/path?with=query&and=more", 4 + 23),
    ("x", "docs at example.com/help today", 8 + 23 + 6),
    ("x", "file.txt stays text", 19),
    ("x", "你好", 4),  # CJK weighs 2
    ("x", "👨‍👩‍👧", 2),  # one emoji, however many code points
    ("x", "e\u0301", 1),  # NFC makes it one code point
    ("x", "café", 4),
    ("twcs", "“quoted” – dash", 15),  # general punctuation weighs 1
    ("mastodon", "@ana@social.example hi", 7),  # only @ana counts
    ("mastodon", "link https://example.com/" + "x" * 100, 5 + 23),
    ("mastodon", "你好", 2),
    ("bluesky", "👨‍👩‍👧 e\u0301", 3),  # grapheme clusters
    ("bluesky", "abc", 3),
    ("elsewhere", "abc", 3),
]


@pytest.mark.parametrize(("platform", "text", "expected"), CASES)
def test_each_platform_counts_its_own_way(platform, text, expected):
    assert length(platform, text) == expected


def test_the_limits_are_the_platforms():
    assert (rule_for("x").limit, rule_for("mastodon").limit, rule_for("bluesky").limit) == (
        280,
        500,
        300,
    )


def test_a_reply_of_140_cjk_characters_fills_x_but_not_mastodon():
    text = "你" * 140
    assert length("x", text) == 280
    assert length("x", text + "你") == 282
    assert length("mastodon", text) == 140
