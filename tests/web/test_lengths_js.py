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


def test_the_counter_in_the_browser_agrees_with_the_server():
    from playwright.sync_api import sync_playwright

    cases = [(p, t) for p, t, _ in CASES] + EXTRA
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.set_content("<!doctype html><title>lengths</title>")
            page.add_script_tag(content=SCRIPT.read_text() + "\nwindow.scLengths = scLengths;")
            counted = page.evaluate(
                "cases => cases.map(([p, t]) => window.scLengths.length(p, t))", cases
            )
        finally:
            browser.close()
    assert counted == [length(p, t) for p, t in cases]
