"""Showing hostile public text inert and legible, on a web page or in a terminal.

A post's text is whatever its author typed. Characters that change how the text around them is
displayed without showing themselves (every format character, Unicode category Cf: bidirectional
overrides and isolates, zero-width characters, soft hyphens, the tag block...) and control
characters (category Cc: ESC starts a terminal escape sequence, BEL rings, CR overwrites a line)
are shown as visible marks such as ``[RLO]`` or ``[ESC]``, so a reversed or hidden phrase cannot
pass for something else and nothing in a post can drive the terminal that shows it. Long runs of
stacked combining marks are cut so they cannot spill over neighbouring lines.

Two sequences that are legitimate emoji are kept: a ZWJ between pictographs, and a subdivision
flag (U+1F3F4 followed by tag characters and U+E007F CANCEL TAG).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

NAMES = {
    "\x00": "NUL",
    "\x07": "BEL",
    "\x08": "BS",
    "\x0b": "VT",
    "\x0c": "FF",
    "\r": "CR",
    "\x1b": "ESC",
    "\x7f": "DEL",
    "\x9b": "CSI",
    "\x9d": "OSC",
    "\u00ad": "SHY",
    "\u061c": "ALM",
    "\u180e": "MVS",
    "\u200b": "ZWSP",
    "\u200c": "ZWNJ",
    "\u200d": "ZWJ",
    "\u200e": "LRM",
    "\u200f": "RLM",
    "\u2028": "LSEP",
    "\u2029": "PSEP",
    "\u202a": "LRE",
    "\u202b": "RLE",
    "\u202c": "PDF",
    "\u202d": "LRO",
    "\u202e": "RLO",
    "\u2060": "WJ",
    "\u2061": "FA",
    "\u2062": "IT",
    "\u2063": "IS",
    "\u2064": "IP",
    "\u2066": "LRI",
    "\u2067": "RLI",
    "\u2068": "FSI",
    "\u2069": "PDI",
    "\ufeff": "BOM",
}
MAX_COMBINING = 3
# Line breaks and tabs lay text out; every other control character is marked.
LAYOUT = frozenset("\n\t")
# A subdivision flag: the black flag, tag letters or digits, CANCEL TAG (U+E007F).
FLAG = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")


def mark_name(ch: str) -> str | None:
    """The visible name of a character that must not act unseen, else None."""
    if ch in LAYOUT:
        return None
    name = NAMES.get(ch)
    if name is not None:
        return name
    category = unicodedata.category(ch)
    if category in ("Cc", "Cf") or 0xE0000 <= ord(ch) <= 0xE007F:
        return f"U+{ord(ch):04X}"
    return None


def _is_emoji_joiner(text: str, i: int) -> bool:
    """A ZWJ between two pictographs is part of an emoji sequence, not a trick."""
    return (
        text[i] == "\u200d"
        and 0 < i < len(text) - 1
        and unicodedata.category(text[i - 1]) in ("So", "Sk", "Mn")
        and unicodedata.category(text[i + 1]) == "So"
    )


def flag_tags(text: str) -> set[int]:
    """The positions in text of tag characters that belong to a subdivision flag emoji (the
    black flag, tag letters or digits, CANCEL TAG): part of the emoji, not hidden text."""
    return {i for m in FLAG.finditer(text) for i in range(m.start() + 1, m.end())}


def segments(text: str) -> Iterator[tuple[str, str | None]]:
    """text in pieces: (plain, None) for text to show as it is (escaped by the caller), and
    (char, name) for a character to show as the visible mark ``[name]``."""
    if text.isascii() and text.isprintable():
        yield text, None
        return
    in_flags = flag_tags(text)
    plain: list[str] = []
    run = 0
    for i, ch in enumerate(text):
        name = None if i in in_flags else mark_name(ch)
        if name is not None and not _is_emoji_joiner(text, i):
            if plain:
                yield "".join(plain), None
                plain = []
            yield ch, name
            run = 0
            continue
        if unicodedata.combining(ch):
            run += 1
            if run > MAX_COMBINING:
                continue
        else:
            run = 0
        plain.append(ch)
    if plain:
        yield "".join(plain), None


def terminal_safe(value: object) -> str:
    """value as text safe to print to a terminal: every control and format character shown as a
    visible mark, combining runs capped; line breaks and tabs kept."""
    text = "" if value is None else str(value)
    return "".join(piece if name is None else f"[{name}]" for piece, name in segments(text))


def one_line(value: object) -> str:
    """terminal_safe, with line breaks and tabs shown as spaces (for tables and lists)."""
    return " ".join(terminal_safe(value).split())
