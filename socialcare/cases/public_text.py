"""What text posted in the brand's name may hold: no character that acts unseen on a reader.

Refused, with the character named as the workspace shows it (socialcare.display):
- control characters (ESC starts terminal escape sequences, BEL rings, a lone CR overwrites a
  line), except line breaks (LF, or CR LF) and tabs;
- bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), which make
  text read in another order than it is written;
- tag characters (U+E0000-U+E007F) outside a subdivision flag emoji, which are invisible;
- lone surrogates, which no platform can store.

Emoji sequences (ZWJ between pictographs, variation selectors, subdivision flags), marks that
right-to-left text needs (LRM, RLM, ALM) and joiners that scripts need (ZWJ, ZWNJ) are kept.
"""

from __future__ import annotations

import unicodedata

from socialcare.display import flag_tags, mark_name

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ALLOWED_CONTROLS = frozenset("\n\t")


def _why(text: str, i: int, in_flags: set[int]) -> str | None:
    """Why text[i] may not be posted, or None when it may."""
    ch = text[i]
    cp = ord(ch)
    if 0xD800 <= cp <= 0xDFFF:
        return "a lone surrogate"
    if ch in BIDI_CONTROLS:
        return "a bidirectional control that reorders text"
    if 0xE0000 <= cp <= 0xE007F and i not in in_flags:
        return "an invisible tag character"
    if unicodedata.category(ch) == "Cc" and ch not in ALLOWED_CONTROLS:
        if ch == "\r" and text[i + 1 : i + 2] == "\n":
            return None
        return "a control character"
    return None


def check(text: str, *, what: str = "a reply") -> None:
    """ValueError naming the first character of text that may not be posted publicly, where it
    is and why."""
    if text.isascii() and text.isprintable():
        return
    in_flags = flag_tags(text)
    for i, ch in enumerate(text):
        why = _why(text, i, in_flags)
        if why is not None:
            code = f"U+{ord(ch):04X}"
            name = mark_name(ch) or code
            about = why if name == code else f"{code}, {why}"
            raise ValueError(
                f"{what} may not contain [{name}] ({about}) at character {i + 1}: remove it"
            )
