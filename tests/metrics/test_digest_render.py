"""Digest text, HTML and Slack rendering, and the number formats they share."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from socialcare.metrics.digest_format import (
    clean,
    duration_change,
    format_duration,
    format_percent,
    percent_change,
    period_label,
    safe_url,
    short_duration,
)
from socialcare.metrics.digest_render import render_html, render_text, slack_payload
from tests.metrics.digest_samples import HOSTILE, empty_digest, sample_digest


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "n/a"),
        (0, "0s"),
        (-3, "0s"),
        (45.4, "45s"),
        (59.6, "1m 00s"),
        (245, "4m 05s"),
        (3599, "59m 59s"),
        (3600, "1h 00m"),
        (7800, "2h 10m"),
        (86399, "1d 00h"),
        (93600, "1d 02h"),
    ],
)
def test_durations_read_like_a_clock(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (30, "30s"),
        (59.9, "59s"),
        (300, "5m"),
        (330, "5m"),
        (5400, "1h 30m"),
        (7200, "2h 00m"),
        (7500, "2h 05m"),
        (172800, "2d 0h"),
        (187200, "2d 4h"),
        (-840, "14m"),
    ],
)
def test_short_durations_read_the_same_on_pages_and_charts(seconds: float, text: str) -> None:
    assert short_duration(seconds) == text


@pytest.mark.parametrize(
    ("ratio", "text"),
    [(None, "n/a"), (0.92, "92%"), (1.0, "100%"), (0.996, "99.6%"), (0.9999, "99.9%"), (0, "0%")],
)
def test_a_rate_short_of_everything_never_reads_as_100_percent(
    ratio: float | None, text: str
) -> None:
    assert format_percent(ratio) == text


@pytest.mark.parametrize(
    ("current", "previous", "text"),
    [
        (720, 1080, "12m 00s ↓ (was 18m 00s, -33%)"),
        (1080, 720, "18m 00s ↑ (was 12m 00s, +50%)"),
        (600, 600, "10m 00s → (was 10m 00s, +0%)"),
        (600, None, "10m 00s"),
        (None, 600, "n/a"),
        (60, 0, "1m 00s ↑ (was 0s)"),
    ],
)
def test_a_duration_is_compared_with_the_previous_period(
    current: float | None, previous: float | None, text: str
) -> None:
    assert duration_change(current, previous) == text


def test_sla_changes_are_in_percentage_points() -> None:
    assert percent_change(0.92, 0.88) == "92% ↑ (was 88%, +4 pts)"
    assert percent_change(0.80, 0.90) == "80% ↓ (was 90%, -10 pts)"
    assert percent_change(0.80, None) == "80%"


def test_the_period_is_shown_in_the_digests_time_zone() -> None:
    week = sample_digest()
    assert period_label(week) == "3 Mar – 9 Mar 2025"
    late = replace(
        empty_digest(),
        start=datetime(2025, 3, 3, 15, 0, tzinfo=UTC),
        end=datetime(2025, 3, 4, 15, 0, tzinfo=UTC),
        tz="Asia/Tokyo",
    )
    assert period_label(late) == "Tue 4 Mar 2025"
    year_end = replace(week, start=datetime(2024, 12, 30, tzinfo=UTC))
    year_end = replace(year_end, end=year_end.start + timedelta(days=7))
    assert period_label(year_end) == "30 Dec 2024 – 5 Jan 2025"


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://x.com/a/status/1", "https://x.com/a/status/1"),
        ("javascript:alert(1)", None),
        ("data:text/html,hi", None),
        ("https://x.com/a\nb", None),
        (None, None),
    ],
)
def test_only_http_links_are_kept(url: str | None, safe: str | None) -> None:
    assert safe_url(url) == safe


def test_untrusted_text_stays_on_one_line() -> None:
    assert clean("evil\r\nBcc: all@example.com\x00") == "evil Bcc: all@example.com"


def test_the_text_part_shows_every_headline_figure_and_the_breakdowns() -> None:
    text = render_text(sample_digest())
    assert "Cases 120 · answered 113 · unanswered 7" in text
    assert "p50 4m 05s ↓ (was 5m 00s, -18%)" in text
    assert "p90 12m 00s ↓ (was 18m 00s, -33%)" in text
    assert "SLA attainment 92% ↑ (was 88%, +4 pts)" in text
    assert "detection 30s · waiting 2m 35s · handling 1m 00s" in text
    assert re.search(r"Billing & Accounts +cases +70 +unanswered +3", text)
    assert "Off hours" in text and "25m 00s" in text
    assert "1. @<script>alert(1)</script> waited 5h 10m (still unanswered)" in text
    assert "javascript:" not in text
    assert text.rstrip().endswith("brand=Acme&period=week")


def test_an_empty_digest_says_so_instead_of_inventing_figures() -> None:
    text = render_text(empty_digest())
    assert "Cases 0 · answered 0 · unanswered 0" in text
    assert "p90 n/a" in text
    assert "No previous period to compare with." in text
    assert "Longest waits" not in text
    html = render_html(empty_digest(), chart_cids={})
    assert "<img" not in html and "<td>0</td>" in html


def test_the_html_escapes_every_untrusted_string_and_loads_nothing_external() -> None:
    digest = replace(sample_digest(), brand='Acme "<b>"')
    html = render_html(digest, chart_cids={"trend": "t1@example.com", "volume": "v1@example.com"})
    assert HOSTILE not in html and html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2
    assert "Acme &#34;&lt;b&gt;&#34;" in html
    assert 'href="https://x.com/i/status/1?a=1&amp;b=&lt;2&gt;"' in html
    assert "javascript:" not in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources == ["cid:t1@example.com", "cid:v1@example.com"]
    assert "<link" not in html and "url(" not in html


def test_the_slack_message_follows_block_kit_limits_and_escapes_handles() -> None:
    payload = slack_payload(sample_digest(), chart_url="javascript:alert(1)")
    json.dumps(payload)
    blocks = payload["blocks"]
    assert len(blocks) <= 50
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Acme: weekly first-response digest"},
    }
    assert len(blocks[1]["fields"]) <= 10
    assert all(len(f["text"]) <= 2000 for f in blocks[1]["fields"])
    waits = next(b for b in blocks if "Longest waits" in b.get("text", {}).get("text", ""))
    assert "<https://x.com/i/status/1?a=1&amp;b=&lt;2&gt;|@&lt;script&gt;" in waits["text"]["text"]
    assert "• @calm_customer waited 2h 00m (answered)" in waits["text"]["text"]
    assert all(b["type"] != "image" for b in blocks)
    assert "unanswered 7" in payload["text"]
