"""Hostile text shown inert: every control and format character is a visible mark, on a page
and in a terminal, and legitimate emoji sequences are kept."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from socialcare.display import one_line, terminal_safe
from socialcare.web.untrusted import untrusted

ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\x1b[2Jb", "a[ESC][2Jb"),
        ("ring\x07", "ring[BEL]"),
        ("\x1b]0;pwned\x07", "[ESC]]0;pwned[BEL]"),
        ("over\rwrite", "over[CR]write"),
        ("abc\u202edcba", "abc[RLO]dcba"),
        ("soft\u00adhyphen", "soft[SHY]hyphen"),
        ("x\u061cy", "x[ALM]y"),
        ("x\u180ey", "x[MVS]y"),
        ("x\u2064y", "x[IP]y"),
        ("tag\U000e0001\U000e0041", "tag[U+E0001][U+E0041]"),
        ("c1\x9b31m", "c1[CSI]31m"),
    ],
)
def test_control_and_format_characters_are_visible_marks(text: str, shown: str) -> None:
    assert terminal_safe(text) == shown


def test_every_format_and_control_character_is_marked() -> None:
    """Not a list: whatever Unicode calls Cc or Cf (but line breaks and tabs) is marked."""
    missed = []
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf"):
            continue
        if ch in terminal_safe(f"a{ch}b"):
            missed.append(f"U+{code:04X}")
    assert missed == []


def test_emoji_sequences_and_layout_are_kept() -> None:
    assert terminal_safe(f"{ENGLAND} {FAMILY}") == f"{ENGLAND} {FAMILY}"
    assert terminal_safe("line one\nline\ttwo") == "line one\nline\ttwo"
    # Tags that do not follow a black flag are marked.
    assert terminal_safe("\U000e0067\U000e007f") == "[U+E0067][U+E007F]"


def test_combining_runs_are_capped() -> None:
    assert terminal_safe("e" + "\u0301" * 40) == "e" + "\u0301" * 3


def test_one_line_folds_line_breaks() -> None:
    assert one_line("a\n\nb\tc\x1b") == "a b c[ESC]"


def test_pages_show_the_same_marks_escaped() -> None:
    html = str(untrusted("<b>\x1b[2J\u202e</b>"))
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert '<span class="ctl" title="U+001B">[ESC]</span>' in html
    assert '<span class="ctl" title="U+202E">[RLO]</span>' in html
    assert "\x1b" not in html and "\u202e" not in html
