"""Pure helpers for the Bluesky source: AT Protocol JSON in, IncomingPost and plain values out.

Post ids: socialcare stores ids in 64 characters, and an AT URI
(``at://did:plc:.../app.bsky.feed.post/rkey``) is about 70. A post's id is therefore its URI
without the scheme and the collection, ``did/rkey`` (46 characters for a did:plc); another record
keeps its collection (``did/app.bsky.feed.repost/rkey``). An id that would still be longer (a
did:web on a long host name) is stored as ``h:`` and a hash of the URI: threads still join on it,
but such a post cannot be answered from socialcare (send_reply says so).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import regex

from socialcare.errors import SourceError
from socialcare.posts.storable import clean_json, clean_text
from socialcare.sources.base import IncomingPost
from socialcare.sources.parse_common import as_count, as_list, as_mapping
from socialcare.sources.parse_common import comparable_text as comparable_text
from socialcare.sources.parse_common import iso_time as parse_time

log = logging.getLogger(__name__)

PLATFORM = "bluesky"
POST = "app.bsky.feed.post"
REPOST_REASON = "app.bsky.feed.defs#reasonRepost"
# Notification reasons that are work; likes, reposts, follows and the rest are not.
WORK_REASONS = frozenset({"mention", "reply", "quote"})
ID_LENGTH = 64
# Bluesky's post limits: 300 graphemes and 3000 bytes of UTF-8.
MAX_GRAPHEMES = 300
MAX_BYTES = 3000

_URI_RE = re.compile(
    r"at://(did:[a-z]+:[A-Za-z0-9._:%-]+)/([a-zA-Z0-9.-]+)/([A-Za-z0-9._~:-]{1,512})"
)
_COMPACT_RE = re.compile(
    r"(did:[a-z]+:[A-Za-z0-9._:%-]+)(?:/([a-zA-Z0-9.-]+))?/([A-Za-z0-9._~:-]+)"
)


def graphemes(text: str) -> int:
    """User-perceived characters (extended grapheme clusters), as Bluesky counts its limit."""
    return len(regex.findall(r"\X", text))


def fit_id(value: str) -> str:
    """An id as stored: itself when it fits 64 characters, else ``h:`` and a hash of it."""
    if len(value) <= ID_LENGTH:
        return value
    return "h:" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:40]


def post_id(uri: object) -> str | None:
    """The stored id of a record's AT URI (see the module docstring); None when not an AT URI."""
    match = _URI_RE.fullmatch(uri) if isinstance(uri, str) else None
    if match is None:
        return None
    did, collection, rkey = match.groups()
    return fit_id(f"{did}/{rkey}" if collection == POST else f"{did}/{collection}/{rkey}")


def post_uri(external_id: str) -> str | None:
    """The AT URI of a stored post id; None for a hashed id (the URI cannot be rebuilt)."""
    match = _COMPACT_RE.fullmatch(external_id)
    if match is None:
        return None
    did, collection, rkey = match.groups()
    return f"at://{did}/{collection or POST}/{rkey}"


def facet_mentions(record: Mapping[str, Any]) -> list[str]:
    """DIDs the post's mention facets name, in order; a facet whose byte range does not lie
    within the text's UTF-8 (or is empty or reversed) is ignored, as Bluesky's apps ignore it."""
    size = len(clean_text(record.get("text")).encode("utf-8"))
    dids: list[str] = []
    for facet in as_list(record.get("facets")):
        index = as_mapping(as_mapping(facet).get("index"))
        start, end = as_count(index.get("byteStart")), as_count(index.get("byteEnd"))
        if start is None or end is None or not start < end <= size:
            continue
        for feature in as_list(as_mapping(facet).get("features")):
            feature = as_mapping(feature)
            did = feature.get("did")
            mention = feature.get("$type") == "app.bsky.richtext.facet#mention"
            if mention and isinstance(did, str) and did.startswith("did:") and did not in dids:
                dids.append(clean_text(did)[: ID_LENGTH * 4])
    return dids


def _quoted(record: Mapping[str, Any]) -> str | None:
    """The post a post quotes: its record embed, or the record part of a record-with-media."""
    embed = as_mapping(record.get("embed"))
    kind = embed.get("$type")
    if kind == "app.bsky.embed.record":
        return post_id(as_mapping(embed.get("record")).get("uri"))
    if kind == "app.bsky.embed.recordWithMedia":
        return post_id(as_mapping(as_mapping(embed.get("record")).get("record")).get("uri"))
    return None


def record_post(
    view: Mapping[str, Any], brand_did: str, *, extra: Mapping[str, Any] | None = None
) -> IncomingPost:
    """One post (a notification or a post view: uri, cid, author, record, indexedAt) as an
    IncomingPost. Its public time is indexedAt, when the network saw it (createdAt is what the
    author's app claims); without one, createdAt. Raises SourceError for a post without a usable
    AT URI, author or time."""
    external_id = post_id(view.get("uri"))
    if external_id is None:
        raise SourceError(f"Bluesky post without a usable AT URI (keys {sorted(view)[:12]})")
    record = as_mapping(view.get("record"))
    if record.get("$type") not in (POST, None):
        raise SourceError(f"Bluesky record {external_id} is not a post")
    author = as_mapping(view.get("author"))
    did = author.get("did")
    if not isinstance(did, str) or not did.startswith("did:"):
        raise SourceError(f"Bluesky post {external_id} has no author DID")
    created_at = parse_time(view.get("indexedAt")) or parse_time(record.get("createdAt"))
    if created_at is None:
        raise SourceError(f"Bluesky post {external_id} has no usable indexedAt or createdAt")
    reply = as_mapping(record.get("reply"))
    parent = post_id(as_mapping(reply.get("parent")).get("uri"))
    root = post_id(as_mapping(reply.get("root")).get("uri")) if parent else None
    langs = [lang for lang in as_list(record.get("langs")) if isinstance(lang, str) and lang]
    verification = as_mapping(author.get("verification"))
    metrics = {
        key: as_count(view.get(field))
        for key, field in (
            ("like_count", "likeCount"),
            ("retweet_count", "repostCount"),
            ("reply_count", "replyCount"),
            ("quote_count", "quoteCount"),
        )
        if as_count(view.get(field)) is not None
    }
    author_id = fit_id(clean_text(did))
    raw = {
        "uri": view.get("uri"),
        "cid": view.get("cid"),
        "indexedAt": view.get("indexedAt"),
        "author": {"did": did, "handle": author.get("handle")},
        "record": record,
        "mentions": facet_mentions(record),
        **(extra or {}),
    }
    return IncomingPost(
        platform=PLATFORM,
        external_id=external_id,
        author_external_id=author_id,
        author_handle=clean_text(author.get("handle")) or author_id,
        text=clean_text(record.get("text")),
        created_at=created_at,
        is_brand=did == brand_did,
        in_reply_to_external_id=parent,
        conversation_external_id=root or parent or external_id,
        quoted_external_id=_quoted(record),
        author_verified=verification.get("verifiedStatus") == "valid",
        lang=clean_text(langs[0])[:16] if langs else None,
        metrics=metrics,
        raw=clean_json(raw),
    )


def profile_reach(profile: object) -> tuple[str, int | None, bool] | None:
    """A detailed profile's (author id, followers, verified), the id as posts carry it; None for
    something that is not a profile."""
    view = as_mapping(profile)
    did = view.get("did")
    if not isinstance(did, str) or not did:
        return None
    verified = as_mapping(view.get("verification")).get("verifiedStatus") == "valid"
    return fit_id(clean_text(did)), as_count(view.get("followersCount")), verified


def sort_time(item: Mapping[str, Any]) -> datetime | None:
    """Where a notification or feed item sorts, as the AppView sorts it: a repost at its repost
    time, a post at the earlier of indexedAt and createdAt (so a backdated post sorts deep)."""
    reason = as_mapping(item.get("reason"))
    if reason.get("$type") == REPOST_REASON:
        return parse_time(reason.get("indexedAt"))
    view = as_mapping(item.get("post")) or item
    times = [
        t
        for t in (
            parse_time(view.get("indexedAt")),
            parse_time(as_mapping(view.get("record")).get("createdAt")),
        )
        if t is not None
    ]
    return min(times) if times else None


def notification_post(item: Mapping[str, Any], brand_did: str) -> IncomingPost | None:
    """A notification as a post when its reason is work (mention, reply, quote), else None."""
    reason = item.get("reason")
    if reason not in WORK_REASONS:
        return None
    return record_post(item, brand_did, extra={"reason": reason})


def feed_post(item: Mapping[str, Any], brand_did: str) -> IncomingPost | None:
    """An item of the brand's own feed: its post, or its repost as a post of its own (flagged
    is_retweet, so the reposted customer post is never confused with it); None for a repost
    whose record the answer does not name."""
    view = as_mapping(item.get("post"))
    reason = as_mapping(item.get("reason"))
    if reason.get("$type") != REPOST_REASON:
        return record_post(view, brand_did)
    repost_id = post_id(reason.get("uri"))
    by = as_mapping(reason.get("by"))
    at = parse_time(reason.get("indexedAt"))
    if repost_id is None or at is None or by.get("did") != brand_did:
        return None
    return IncomingPost(
        platform=PLATFORM,
        external_id=repost_id,
        author_external_id=fit_id(brand_did),
        author_handle=clean_text(by.get("handle")) or brand_did,
        text="",
        created_at=at,
        is_brand=True,
        is_retweet=True,
        quoted_external_id=post_id(view.get("uri")),
        raw=clean_json({"uri": reason.get("uri"), "reposted": view.get("uri")}),
    )


def page_items(payload: object, key: str, what: str) -> tuple[list[Mapping[str, Any]], str | None]:
    """The items and the next cursor of a page; SourceError when the page is not one."""
    if not isinstance(payload, Mapping):
        raise SourceError(f"Bluesky {what}: the answer is not a JSON object")
    items = payload.get(key)
    if not isinstance(items, list):
        raise SourceError(f"Bluesky {what}: the answer has no {key} array")
    cursor = payload.get("cursor")
    good = [item for item in items if isinstance(item, Mapping)]
    if len(good) < len(items):
        log.warning(
            "Bluesky %s: skipping %d items that are not objects", what, len(items) - len(good)
        )
    return good, cursor if isinstance(cursor, str) and cursor else None
