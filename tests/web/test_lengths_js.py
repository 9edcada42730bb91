"""The page's reply counter (static/lengths.js, in Chromium) counts as the server does."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialcare.cases.lengths import length
from tests.unit.test_lengths import CASES

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[2] / "socialcare" / "web" / "static" / "lengths.js"
EXTRA = [
    ("x", "Sorry @ana, see https://help.example.com/refunds — 你好 👍🏽 ok"),
    ("mastodon", "@ana@mastodon.social sorry! https://example.org/x"),
    ("bluesky", "🇯🇵 flags and e\u0301 accents"),
]


def test_the_counter_in_the_browser_agrees_with_the_server(browser):
    cases = [(p, t) for p, t, _ in CASES] + EXTRA
    page = browser.new_page()
    try:
        page.set_content("<!doctype html><title>lengths</title>")
        page.add_script_tag(content=SCRIPT.read_text() + "\nwindow.scLengths = scLengths;")
        counted = page.evaluate(
            "cases => cases.map(([p, t]) => window.scLengths.length(p, t))", cases
        )
    finally:
        page.close()
    assert counted == [length(p, t) for p, t in cases]
