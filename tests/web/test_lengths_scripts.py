"""The page's reply counter (static/lengths.js, run in Chromium) counts every script as the server
does (socialcare.cases.lengths) and as the references in tests/language/test_lengths_reference.py
say; on generated strings mixing scripts, emoji, marks and links, the two always agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcare.cases.lengths import TLDS, length
from tests.language.test_lengths_reference import NEWER_EMOJI, REFERENCE

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[2] / "socialcare" / "web" / "static" / "lengths.js"
PLATFORMS = ("x", "mastodon", "bluesky", "elsewhere")

# Pieces a reply is made of: words in several scripts, emoji of every kind, combining marks,
# joiners and links; single code points from the same scripts fill the gaps.
PIECES = [
    "سلام",
    "می\u200cخواهم",
    "مُحَمَّد",
    "Привет",
    "ёжик",
    "नमस्ते",
    "क्षत्रिय",
    "你好",
    "こんにちは",
    "ｶﾀｶﾅ",
    "한국어",
    "𠀀",
    "café",
    "e\u0301",
    "👍🏽",
    "👨\u200d👩\u200d👧",
    "❤️\u200d🔥",
    "🇮🇷",
    "🇷🇺",
    "1️⃣",
    "#️⃣",
    "©",
    "®️",
    "☺",
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "\u200d",
    "\u200c",
    "\ufe0f",
    "\u0301",
    "\u064e",
    " ",
    ". ",
    "(",
    ")",
    "@ana@mastodon.social",
    "https://example.com/a",
    "https://fa.wikipedia.org/wiki/",
    "https://пример.рф/путь",
    "yandex.ru",
    "example.co.uk/x?y=1",
    "file.py",
    "a.zz",
    "www.example",
]
RANGES = [(0x20, 0x7E), (0x0600, 0x06FF), (0x0400, 0x04FF), (0x0900, 0x097F), (0x0300, 0x036F)]
RANGES += [(0x2000, 0x206F), (0x3040, 0x30FF), (0x4E00, 0x4E80), (0x1F300, 0x1F6FF)]
CODE_POINT = st.sampled_from(RANGES).flatmap(lambda r: st.integers(*r)).map(chr)
TEXT = st.lists(st.one_of(st.sampled_from(PIECES), CODE_POINT), max_size=40).map("".join)


@pytest.fixture(scope="module")
def page(browser):
    page = browser.new_page()
    page.set_content("<!doctype html><title>lengths</title>")
    page.add_script_tag(content=SCRIPT.read_text() + "\nwindow.scLengths = scLengths;")
    yield page
    page.close()


def _counted(page, texts: list[str]) -> list[list[int]]:
    return page.evaluate(
        "([texts, platforms]) => texts.map(t => platforms.map(p => window.scLengths.length(p, t)))",
        [texts, list(PLATFORMS)],
    )


def test_the_counter_matches_the_references_in_every_script(page):
    texts = [text for _, text, *_ in REFERENCE]
    counted = _counted(page, texts)
    expected = [[x, mastodon, bluesky, len(text)] for _, text, x, mastodon, bluesky in REFERENCE]
    assert counted == expected
    newer = _counted(page, NEWER_EMOJI)
    assert newer == [[2, 1, 1, len(emoji)] for emoji in NEWER_EMOJI]


def test_the_counter_knows_the_same_top_level_domains(page):
    assert set(page.evaluate("window.scLengths.tlds()")) == set(TLDS)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(texts=st.lists(TEXT, min_size=1, max_size=20))
def test_the_counter_and_the_server_agree_on_generated_replies(page, texts):
    expected = [[length(p, t) for p in PLATFORMS] for t in texts]
    assert _counted(page, texts) == expected
