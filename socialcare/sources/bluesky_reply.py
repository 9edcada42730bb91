"""Building the brand's Bluesky reply: the post record with its root and parent strong refs
and its rich-text facets. Pure: no network here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from atproto_client.utils.facet_detection import detect_facets, detect_mentions

from socialcare.sources.bluesky_parse import POST

# TIDs (the record keys of posts) spell 64 bits in this alphabet: microseconds since the epoch
# in the top 53 (below a zero bit), a clock id in the low 10.
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_TID_LENGTH = 13


def strong_ref(value: object) -> dict[str, str] | None:
    """``{uri, cid}`` of a record (a post view, a createRecord answer, a reply ref); None when
    either is missing or not an at:// URI and a string."""
    if not isinstance(value, Mapping):
        return None
    uri, cid = value.get("uri"), value.get("cid")
    if not isinstance(uri, str) or not uri.startswith("at://") or not isinstance(cid, str):
        return None
    if not cid:
        return None
    return {"uri": uri, "cid": cid}


def tid_time(rkey: str) -> datetime | None:
    """The time a TID record key was minted; None when the key is not a TID."""
    if len(rkey) != _TID_LENGTH or any(c not in _TID_ALPHABET for c in rkey):
        return None
    number = 0
    for char in rkey:
        number = number * 32 + _TID_ALPHABET.index(char)
    if number >> 63:
        return None
    try:
        return datetime.fromtimestamp((number >> 10) / 1_000_000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def facets(text: str, known: Mapping[str, str]) -> list[dict[str, Any]]:
    """Rich-text facets for a reply: links and tags, and mentions of the handles whose DIDs are
    known (the people in the thread), with UTF-8 byte ranges as the lexicon wants them."""
    found: list[dict[str, Any]] = [
        facet.model_dump(by_alias=True, exclude_none=True) for facet in detect_facets(text)
    ]
    for mention in detect_mentions(text):
        did = known.get(mention.handle.lower())
        if did and did.startswith("did:"):
            found.append(
                {
                    "$type": "app.bsky.richtext.facet",
                    "index": {"byteStart": mention.byte_start, "byteEnd": mention.byte_end},
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
                }
            )
    return sorted(found, key=lambda f: f["index"]["byteStart"])


def reply_record(
    text: str,
    *,
    parent: Mapping[str, str],
    root: Mapping[str, str],
    at: datetime,
    known: Mapping[str, str],
) -> dict[str, Any]:
    """The app.bsky.feed.post record of a reply: root is the thread's first post, parent the
    post answered (the same one when it starts the thread)."""
    record: dict[str, Any] = {
        "$type": POST,
        "text": text,
        "createdAt": at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "reply": {
            "root": {"uri": root["uri"], "cid": root["cid"]},
            "parent": {"uri": parent["uri"], "cid": parent["cid"]},
        },
    }
    found = facets(text, known)
    if found:
        record["facets"] = found
    return record
