"""How long a reply is, as each platform counts it (the page's counter counts the same way).

- X (twitter-text v3): text NFC-normalised; every URL counts 23; an emoji counts 2 however many
  code points it has; other code points count 1 in the Latin, general punctuation and similar
  ranges and 2 elsewhere (CJK, for one). The limit is 280.
- Mastodon: code points, every URL counts 23, a mention counts its username only (the
  @domain part is free). The limit is 500.
- Bluesky: grapheme clusters (what a person sees as one character). The limit is 300.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import regex

from socialcare.cases import public_text

URL_LENGTH = 23
BLUESKY_MAX_BYTES = 3000  # a post record's text, besides its 300 graphemes
# Links with a scheme, and bare domains under the common top-level domains (the platforms link
# those too); a bare name.ext of any other kind is counted as text.
TLDS = "com|net|org|io|co|ly|me|app|dev|gl|gg|tv|uk|de|fr|es|it|nl|ca|au|in|jp|us|info|biz"
URL = regex.compile(
    rf"https?://[^\s<>\"']+|(?<![@\w.])(?:[\w-]+\.)+(?:{TLDS})\b(?:/[^\s<>\"']*)?",
    regex.IGNORECASE,
)
MENTION_DOMAIN = regex.compile(r"(@[\w.]+)@[\w.-]+\w")
GRAPHEME = regex.compile(r"\X")
PICTOGRAPH = regex.compile(r"\p{Extended_Pictographic}")
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


def _x_weight(cluster: str) -> int:
    if PICTOGRAPH.search(cluster):
        return 2
    total = 0
    for ch in cluster:
        cp = ord(ch)
        total += 1 if any(lo <= cp <= hi for lo, hi in LIGHT_RANGES) else 2
    return total


def _x_length(text: str) -> int:
    text = unicodedata.normalize("NFC", text)
    urls = URL.findall(text)
    rest = URL.sub("", text)
    return len(urls) * URL_LENGTH + sum(_x_weight(c) for c in GRAPHEME.findall(rest))


def length(platform: str, text: str) -> int:
    """The reply's length as the platform counts it."""
    counting = rule_for(platform).counting
    if counting == "x":
        return _x_length(text)
    if counting == "mastodon":
        text = MENTION_DOMAIN.sub(r"\1", text)
        urls = URL.findall(text)
        return len(urls) * URL_LENGTH + len(URL.sub("", text))
    if counting == "graphemes":
        return len(GRAPHEME.findall(text))
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
