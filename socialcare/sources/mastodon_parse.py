"""Pure helpers for the Mastodon source: API entities in, IncomingPost and plain values out.

No network here. Entities arrive as Mastodon.py gives them (dicts, times possibly already parsed
into datetimes) or as plain decoded JSON; a field of the wrong type counts as absent.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

from socialcare.errors import SourceError
from socialcare.sources.base import (
    IncomingPost,
    RateWindow,
    epoch_time,
    read_window,
    wait_if_spent,
)
from socialcare.sources.parse_common import as_count, as_mapping, iso_time
from socialcare.sources.parse_common import comparable_text as comparable_text

log = logging.getLogger(__name__)

PLATFORM = "mastodon"

# Visibilities from the narrowest audience to the widest (Mastodon's four).
VISIBILITIES = ("direct", "private", "unlisted", "public")
# HTML beyond this many characters is not parsed: no post is that long (servers allow a few
# thousand characters of text), and parsing a hostile megabyte would stall the poll.
MAX_HTML = 100_000
# Elements whose content is never text a person wrote (a hostile server could send them).
_SKIPPED = frozenset({"script", "style", "template", "head", "title", "textarea", "select"})
_BLOCKS = frozenset(
    {"p", "div", "blockquote", "li", "ul", "ol", "pre", "h1", "h2", "h3", "h4", "h5", "h6"}
)
_MENTION_RE = re.compile(r"(?<![\w/@])@(\w+(?:[.-]\w+)*(?:@[\w-]+(?:\.[\w-]+)+)?)")
_SPACE_RE = re.compile(r"[^\S\n]+")
_BLANK_LINES_RE = re.compile(r"\n{3,}")


class _TextExtractor(HTMLParser):
    """Text of Mastodon's status HTML: tags dropped, entities decoded once, <br> and paragraphs
    as line breaks, script-like elements dropped with their content."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            # Whitespace in HTML text is layout, not content: only <br> and blocks break lines.
            self.parts.append(re.sub(r"\s+", " ", data))


def clean_text(text: str) -> str:
    """Text safe to store and show: control characters (NUL among them, which PostgreSQL
    refuses) and lone surrogates (which no database encoding accepts) removed; line breaks and
    tabs kept."""
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs"))


def html_to_text(content: object) -> str:
    """A status's HTML content as the plain text its author wrote."""
    if not isinstance(content, str) or not content:
        return ""
    html = content[:MAX_HTML]
    if html.rfind("<") > html.rfind(">"):
        html = html[: html.rfind("<")]  # a tag left open (or cut above) is not text
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = clean_text("".join(parser.parts))
    lines = [_SPACE_RE.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES_RE.sub("\n\n", "\n".join(lines)).strip()


def mentioned(text: str) -> set[str]:
    """The accounts a text would mention on Mastodon (lower-cased, as written: user or
    user@domain)."""
    return {m.lower() for m in _MENTION_RE.findall(text)}


def reply_visibility(customer_visibility: object) -> str:
    """The widest visibility a reply to a post of this visibility may have.

    Public and unlisted posts are answered alike. A followers-only or direct post is answered
    with a direct reply: a followers-only reply would reach the brand's followers, an audience
    the customer never chose. Anything unknown is treated as direct.
    """
    if customer_visibility in ("public", "unlisted"):
        return str(customer_visibility)
    return "direct"


def id_of(value: object) -> str | None:
    """An id field as a plain string (Mastodon sends strings; Mastodon.py wraps them in a str
    subclass that compares as a number, and some clients decode numbers)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value and len(value) <= 64 and value.isprintable():
        return str.__str__(value)
    return None


def id_key(value: str) -> tuple[int, str]:
    """Sort key of ids: Mastodon's are decimal numbers as strings (longer is newer), other
    servers' fixed-length sortable strings; the documented order is by length, then lexically."""
    return (len(value), value)


def newest_id(current: object, ids: Iterable[str]) -> str | None:
    """The newest of the current cursor and ids; None when there is none."""
    best = id_of(current)
    for value in ids:
        if best is None or id_key(value) > id_key(best):
            best = value
    return best


def jsonable(value: object, depth: int = 0) -> Any:
    """A value made safe for a JSON column: datetimes as ISO strings, strings cleaned."""
    if depth > 8:
        return None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return clean_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean_text(str(value))


def brief(value: object) -> str:
    """The shape of a value for an error message, never its texts (they are posts)."""
    if isinstance(value, Mapping):
        keys = ", ".join(sorted(str(k)[:30] for k in value)[:15])
        named = id_of(value.get("id"))
        return f"object{f' id={named[:25]!r}' if named else ''} with keys [{keys}]"
    if isinstance(value, list):
        return f"array of {len(value)}"
    if isinstance(value, str):
        return f"string of {len(value)} characters"
    return type(value).__name__


def _raw(status: Mapping[str, Any], account: Mapping[str, Any]) -> dict[str, Any]:
    """What is kept of a status: its identity, audience and threading, not the whole entity."""
    keep = ("id", "uri", "url", "created_at", "visibility", "in_reply_to_id", "language")
    raw: dict[str, Any] = {k: jsonable(status.get(k)) for k in keep if k in status}
    raw["in_reply_to_account_id"] = jsonable(status.get("in_reply_to_account_id"))
    raw["account"] = {"id": jsonable(account.get("id")), "acct": jsonable(account.get("acct"))}
    raw["mentions"] = [
        jsonable(as_mapping(m).get("acct")) for m in status.get("mentions") or [] if as_mapping(m)
    ][:50]
    reblog = as_mapping(status.get("reblog"))
    if reblog:
        raw["reblog"] = {"id": jsonable(reblog.get("id"))}
    raw["content"] = jsonable(status.get("content"))
    if status.get("spoiler_text"):
        raw["spoiler_text"] = jsonable(status.get("spoiler_text"))
    return raw


def _quoted(status: Mapping[str, Any]) -> str | None:
    """The quoted post of a quote (Mastodon 4.5: a Quote, or a ShallowQuote with only an id)."""
    quote = as_mapping(status.get("quote"))
    return id_of(as_mapping(quote.get("quoted_status")).get("id")) or id_of(
        quote.get("quoted_status_id")
    )


def status_to_post(status: object, brand_account_id: str) -> IncomingPost:
    """One Mastodon Status as an IncomingPost.

    A reblog is flagged is_retweet (never work); the brand's own statuses are is_brand. A status
    without a usable id or time raises SourceError.
    """
    if not isinstance(status, Mapping):
        raise SourceError(f"Mastodon status is not an object: {brief(status)}")
    post_id = id_of(status.get("id"))
    if post_id is None:
        raise SourceError(f"Mastodon status without a usable id: {brief(status)}")
    created_at = iso_time(status.get("created_at"))
    if created_at is None:
        raise SourceError(f"Mastodon status {post_id[:30]!r} has no usable created_at")
    account = as_mapping(status.get("account"))
    author_id = id_of(account.get("id")) or ""
    handle = account.get("acct") or account.get("username")
    text = html_to_text(status.get("content"))
    warning = status.get("spoiler_text")
    if isinstance(warning, str) and warning.strip():
        # A content warning is part of what the author wrote, and often the gist of it.
        text = f"CW: {clean_text(warning.strip())}\n\n{text}".strip()
    lang = status.get("language")
    return IncomingPost(
        platform=PLATFORM,
        external_id=post_id,
        author_external_id=author_id,
        author_handle=clean_text(handle) if isinstance(handle, str) and handle else author_id,
        text=text,
        created_at=created_at,
        is_brand=bool(author_id) and author_id == brand_account_id,
        is_retweet=bool(as_mapping(status.get("reblog"))),
        in_reply_to_external_id=id_of(status.get("in_reply_to_id")),
        quoted_external_id=_quoted(status),
        author_followers=as_count(account.get("followers_count")),
        author_verified=False,  # Mastodon has no verified accounts, only verified profile links
        lang=lang if isinstance(lang, str) and lang and len(lang) <= 16 else None,
        metrics={
            "like_count": as_count(status.get("favourites_count")) or 0,
            "retweet_count": as_count(status.get("reblogs_count")) or 0,
            "reply_count": as_count(status.get("replies_count")) or 0,
            "quote_count": as_count(status.get("quotes_count")) or 0,
        },
        raw=_raw(status, account),
    )


def posts_of(items: object, brand_account_id: str, *, what: str) -> list[IncomingPost]:
    """The statuses of one page (a list of Status, or of Notification when what is
    "notifications": only mentions, each with its status). A page that is not a list raises
    SourceError; one malformed item is skipped with a warning so it cannot block the others."""
    if not isinstance(items, list):
        raise SourceError(f"Mastodon {what} page is not an array: {brief(items)}")
    posts: list[IncomingPost] = []
    for item in items:
        status: object = item
        if what == "notifications":
            note = as_mapping(item)
            if note.get("type") != "mention":
                continue
            status = note.get("status")
            if status is None:
                continue  # the status was deleted since
        try:
            posts.append(status_to_post(status, brand_account_id))
        except SourceError as exc:
            log.warning("Mastodon %s page: skipping a malformed item: %s", what, exc)
    return posts


def item_ids(items: object) -> list[str]:
    """The ids of a page's items (notification ids for notifications), for the cursor."""
    if not isinstance(items, list):
        return []
    return [i for i in (id_of(as_mapping(item).get("id")) for item in items) if i is not None]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return headers.get(f"X-RateLimit-{name}") or headers.get(f"x-ratelimit-{name.lower()}")


def reset_time(headers: Mapping[str, str]) -> datetime | None:
    """X-RateLimit-Reset as a time (Mastodon sends ISO 8601; some servers an epoch)."""
    value = _header(headers, "Reset")
    if not isinstance(value, str) or not value.isascii() or len(value) > 40:
        return None
    return epoch_time(value) if value.isdigit() else iso_time(value)


def rate_window(headers: Mapping[str, str]) -> RateWindow | None:
    """X-RateLimit-Limit, -Remaining and -Reset as a RateWindow (Mastodon's limit counts every
    request of the access token); None when absent or unreadable."""
    return read_window(
        _header(headers, "Limit"), _header(headers, "Remaining"), reset_time(headers)
    )


def seconds_until_reset(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds until the rate window resets when the answer said no request is left, else None."""
    return wait_if_spent(_header(headers, "Remaining"), reset_time(headers), now)
