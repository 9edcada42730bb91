"""Showing hostile public text inert and legible.

Every post is escaped (autoescape does that). On top of it, characters that change how the
text around them is displayed without showing themselves (bidirectional overrides and
isolates, zero-width characters) are shown as visible marks, so a reversed or hidden phrase
cannot pass for something else; long runs of stacked combining marks are cut so they cannot
spill over neighbouring lines.
"""

from __future__ import annotations

import unicodedata

from markupsafe import Markup, escape

INVISIBLE = {
    "\u200b": "ZWSP",
    "\u200c": "ZWNJ",
    "\u200d": "ZWJ",
    "\u200e": "LRM",
    "\u200f": "RLM",
    "\u202a": "LRE",
    "\u202b": "RLE",
    "\u202c": "PDF",
    "\u202d": "LRO",
    "\u202e": "RLO",
    "\u2060": "WJ",
    "\u2066": "LRI",
    "\u2067": "RLI",
    "\u2068": "FSI",
    "\u2069": "PDI",
    "\ufeff": "BOM",
}
MAX_COMBINING = 3


def _is_emoji_joiner(text: str, i: int) -> bool:
    """A ZWJ between two pictographs is part of an emoji sequence, not a trick."""
    return (
        text[i] == "\u200d"
        and 0 < i < len(text) - 1
        and unicodedata.category(text[i - 1]) in ("So", "Sk", "Mn")
        and unicodedata.category(text[i + 1]) == "So"
    )


def untrusted(value: object) -> Markup:
    """value as safe HTML: escaped, invisible controls shown, combining runs capped."""
    text = "" if value is None else str(value)
    if text.isascii():  # no invisible controls, no combining marks: escaping is all it needs
        return escape(text)
    out: list[str] = []
    run = 0
    for i, ch in enumerate(text):
        name = INVISIBLE.get(ch)
        if name is not None and not _is_emoji_joiner(text, i):
            out.append(f'<span class="ctl" title="U+{ord(ch):04X}">[{name}]</span>')
            run = 0
            continue
        if unicodedata.combining(ch):
            run += 1
            if run > MAX_COMBINING:
                continue
        else:
            run = 0
        out.append(str(escape(ch)))
    return Markup("".join(out))
