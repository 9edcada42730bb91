"""The queue's live SLA countdown (static/app.js, in Chromium) writes durations as the server's
short_duration does, so a row reads the same before and after its first tick."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialcare.metrics.digest_format import short_duration

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[2] / "socialcare" / "web" / "static" / "app.js"
SECONDS = [
    0,
    0.4,
    1,
    45,
    59.9,
    60,
    61,
    599,
    3599,
    3600,
    3661,
    7500,
    86399,
    86400,
    90061,
    -45,
    -3700,
]


def test_the_live_countdown_writes_durations_as_the_server_does(browser):
    page = browser.new_page()
    try:
        page.set_content("<!doctype html><title>durations</title>")
        page.add_script_tag(content=SCRIPT.read_text() + "\nwindow.sc = sc;")
        written = page.evaluate("values => values.map(v => window.sc.duration(v))", SECONDS)
    finally:
        page.close()
    assert written == [short_duration(s) for s in SECONDS]
    assert written[3] == "45s"
