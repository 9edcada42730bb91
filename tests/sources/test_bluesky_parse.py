"""Parsing Bluesky notifications, feed items and records, and building replies: pure, no network."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socialcare.cases.lengths import check, length, rule_for
from socialcare.errors import SourceError
from socialcare.sources.bluesky_parse import (
    clean_json,
    facet_mentions,
    feed_post,
    graphemes,
    notification_post,
    page_items,
    post_id,
    post_uri,
    record_post,
    sort_time,
)
from socialcare.sources.bluesky_reply import facets, reply_record, tid_time

BRAND = "did:plc:brandbrandbrandbrandbran"
ANN = "did:plc:annannannannannannannanna"
URI = f"at://{ANN}/app.bsky.feed.post/3kabcdefghij2"
LAUNCH = f"at://{BRAND}/app.bsky.feed.post/3kzzzzzzzzzz2"


def notification(reason: str = "mention", **record) -> dict:
    return {
        "uri": URI,
        "cid": "bafyreiexample",
        "reason": reason,
        "indexedAt": "2026-05-01T12:00:01.500Z",
        "author": {"did": ANN, "handle": "ann.bsky.social"},
        "record": {
            "$type": "app.bsky.feed.post",
            "text": "@brand.test my order never arrived",
            "createdAt": "2026-05-01T12:00:00.000Z",
            **record,
        },
    }


def test_an_at_uri_becomes_a_short_id_and_back():
    assert post_id(URI) == f"{ANN}/3kabcdefghij2"
    assert len(post_id(URI)) <= 64
    assert post_uri(post_id(URI)) == URI


def test_an_id_too_long_for_the_column_is_hashed_and_cannot_be_turned_back():
    long_did = "did:web:" + "a" * 60 + ".example.com"
    stored = post_id(f"at://{long_did}/app.bsky.feed.post/3kabcdefghij2")
    assert stored.startswith("h:") and len(stored) <= 64
    assert post_uri(stored) is None


@pytest.mark.parametrize(
    "uri",
    [None, 42, "", "https://bsky.app/x", "at://not-a-did/app.bsky.feed.post/x", "at://did:plc:a"],
)
def test_what_is_not_an_at_uri_has_no_id(uri):
    assert post_id(uri) is None


def test_a_mention_notification_is_a_customer_post_at_its_indexed_time():
    post = notification_post(notification(langs=["en-US"]), BRAND)
    assert post is not None
    assert post.external_id == post_id(URI) and post.author_handle == "ann.bsky.social"
    assert post.created_at == datetime(2026, 5, 1, 12, 0, 1, 500000, tzinfo=UTC)
    assert not post.is_brand and post.lang == "en-US"
    assert post.conversation_external_id == post.external_id
    assert post.raw["cid"] == "bafyreiexample" and post.raw["reason"] == "mention"


@pytest.mark.parametrize("reason", ["like", "repost", "follow", "starterpack-joined", None])
def test_likes_reposts_and_follows_are_not_work(reason):
    assert notification_post(notification(reason), BRAND) is None


def test_a_reply_keeps_its_parent_and_its_threads_root():
    parent = f"at://{ANN}/app.bsky.feed.post/3kparentparen"
    post = notification_post(
        notification(
            "reply",
            reply={"root": {"uri": LAUNCH, "cid": "a"}, "parent": {"uri": parent, "cid": "b"}},
        ),
        BRAND,
    )
    assert post.in_reply_to_external_id == post_id(parent)
    assert post.conversation_external_id == post_id(LAUNCH)


@pytest.mark.parametrize(
    "embed",
    [
        {"$type": "app.bsky.embed.record", "record": {"uri": LAUNCH, "cid": "c"}},
        {
            "$type": "app.bsky.embed.recordWithMedia",
            "record": {"record": {"uri": LAUNCH, "cid": "c"}},
            "media": {"$type": "app.bsky.embed.images", "images": []},
        },
    ],
)
def test_a_quote_names_the_quoted_post_with_or_without_media(embed):
    assert notification_post(notification("quote", embed=embed), BRAND).quoted_external_id == (
        post_id(LAUNCH)
    )


def test_hostile_unicode_is_kept_except_what_a_database_refuses():
    text = "\x00zero \ud800 lone ‮reversed‬ 👨‍👩‍👧 é\u0301 " + "ﷺ" * 50
    post = notification_post(notification(text=text), BRAND)
    assert "\x00" not in post.text and "\ud800" not in post.text
    assert "\ufffd" in post.text and "‮reversed‬" in post.text and "👨‍👩‍👧" in post.text
    assert "\x00" not in str(post.raw) and "\ud800" not in str(post.raw)
    post.text.encode("utf-8")  # storable: no lone surrogate left


def test_deeply_nested_or_odd_json_in_a_record_is_dropped_not_fatal():
    nested: dict = {}
    for _ in range(100):
        nested = {"n": nested}
    cleaned = clean_json({"a": nested, "b": {1, 2}, "c": float("inf")})
    assert cleaned["b"] is None and cleaned["c"] == float("inf")
    depth, node = 0, cleaned["a"]
    while isinstance(node, dict):
        depth, node = depth + 1, node.get("n")
    assert depth < 40


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"uri": None}, "AT URI"),
        ({"author": {}}, "author DID"),
        ({"author": {"did": 7}}, "author DID"),
        ({"indexedAt": "yesterday", "record": {"text": "x", "createdAt": None}}, "indexedAt"),
        ({"record": {"$type": "app.bsky.feed.like"}}, "not a post"),
    ],
)
def test_a_post_missing_what_it_needs_is_refused_with_a_clear_error(change, complaint):
    with pytest.raises(SourceError, match=complaint):
        record_post({**notification(), **change}, BRAND)


def test_missing_optional_fields_are_absent_not_errors():
    post = record_post(
        {"uri": URI, "author": {"did": ANN}, "record": {"createdAt": "2026-05-01T12:00:00Z"}},
        BRAND,
    )
    assert post.text == "" and post.author_handle == ANN and post.lang is None
    assert post.created_at == datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert post.in_reply_to_external_id is None and post.metrics == {}


def test_mention_facets_name_dids_only_within_the_texts_bytes():
    text = "😡 @brand.test hi"  # the emoji is 4 bytes: the mention is bytes 5 to 16
    good = {"index": {"byteStart": 5, "byteEnd": 16}, "features": [_mention(BRAND)]}
    beyond = {"index": {"byteStart": 5, "byteEnd": 500}, "features": [_mention("did:plc:x")]}
    reversed_ = {"index": {"byteStart": 9, "byteEnd": 2}, "features": [_mention("did:plc:y")]}
    negative = {"index": {"byteStart": -1, "byteEnd": 2}, "features": [_mention("did:plc:z")]}
    junk = {"index": "nope", "features": "nope"}
    link = {"index": {"byteStart": 0, "byteEnd": 4}, "features": [{"$type": "x#link", "did": "d"}]}
    record = {"text": text, "facets": [good, beyond, reversed_, negative, junk, link, 3]}
    assert facet_mentions(record) == [BRAND]
    assert facet_mentions({"text": text, "facets": "not a list"}) == []


def _mention(did: str) -> dict:
    return {"$type": "app.bsky.richtext.facet#mention", "did": did}


def test_the_brands_repost_is_a_post_of_its_own_that_is_not_work():
    item = {
        "post": {**notification(), "likeCount": 3},
        "reason": {
            "$type": "app.bsky.feed.defs#reasonRepost",
            "by": {"did": BRAND, "handle": "brand.test"},
            "uri": f"at://{BRAND}/app.bsky.feed.repost/3krepostrepo2",
            "indexedAt": "2026-05-01T13:00:00Z",
        },
    }
    post = feed_post(item, BRAND)
    assert post.is_brand and post.is_retweet and post.external_id != post_id(URI)
    assert post.quoted_external_id == post_id(URI)
    assert sort_time(item) == datetime(2026, 5, 1, 13, tzinfo=UTC)
    assert feed_post({**item, "reason": {**item["reason"], "uri": None}}, BRAND) is None


def test_a_feed_post_carries_its_counts_as_engagement():
    view = {**notification(), "likeCount": 5, "repostCount": 2, "replyCount": True}
    post = feed_post({"post": view}, BRAND)
    assert post.metrics == {"like_count": 5, "retweet_count": 2}


def test_a_backdated_post_sorts_at_its_claimed_time_as_the_appview_sorts_it():
    item = notification(createdAt="2020-01-01T00:00:00Z")
    assert sort_time(item) == datetime(2020, 1, 1, tzinfo=UTC)
    assert record_post(item, BRAND).created_at.year == 2026  # but it went public when indexed


@pytest.mark.parametrize("payload", [None, [], "x", {"notifications": "x"}, {}])
def test_a_page_that_is_not_a_page_is_a_source_error(payload):
    with pytest.raises(SourceError, match="notifications"):
        page_items(payload, "notifications", "notifications of brand")


def test_items_that_are_not_objects_are_skipped_and_the_cursor_kept():
    items, cursor = page_items(
        {"notifications": [1, {"a": 1}], "cursor": "c1"}, "notifications", "n"
    )
    assert items == [{"a": 1}] and cursor == "c1"
    assert page_items({"notifications": [], "cursor": ""}, "notifications", "n") == ([], None)


@pytest.mark.parametrize(
    ("text", "count"), [("abc", 3), ("👨‍👩‍👧‍👦", 1), ("é\u0301", 1), ("🇫🇷🇩🇪", 2), ("", 0)]
)
def test_graphemes_count_what_a_reader_sees_as_one_character(text, count):
    assert graphemes(text) == count


def test_a_reply_record_points_at_root_and_parent_and_links_the_customer():
    root = {"uri": LAUNCH, "cid": "root-cid"}
    parent = {"uri": URI, "cid": "parent-cid"}
    text = "👋 @ann.bsky.social see https://example.com/help"
    at = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    record = reply_record(text, parent=parent, root=root, at=at, known={"ann.bsky.social": ANN})
    assert record["reply"] == {"root": root, "parent": parent}
    assert record["createdAt"] == "2026-05-01T12:30:00.000Z"
    mention, link = record["facets"]
    encoded = text.encode()
    start, end = mention["index"]["byteStart"], mention["index"]["byteEnd"]
    assert encoded[start:end] == b"@ann.bsky.social" and mention["features"][0]["did"] == ANN
    assert (
        encoded[link["index"]["byteStart"] : link["index"]["byteEnd"]]
        == b"https://example.com/help"
    )


def test_a_handle_not_in_the_thread_gets_no_mention_facet():
    assert facets("@stranger.bsky.social hello", {"ann.bsky.social": ANN}) == []


def test_a_tid_record_key_tells_when_it_was_made():
    assert tid_time("3kabcdefghij2").year in range(2023, 2026)
    assert tid_time("not-a-tid") is None and tid_time("zzzzzzzzzzzzz") is None


def test_a_bluesky_reply_is_measured_in_graphemes_and_bytes():
    family = "👨‍👩‍👧‍👦"  # seven code points, one grapheme
    assert length("bluesky", family * 300) == 300 == rule_for("bluesky").limit
    assert length("bluesky", family * 301) > rule_for("bluesky").limit
    assert length("x", family) == 2  # X weighs any emoji as two
    check("bluesky", "é" * 300)
    with pytest.raises(ValueError, match="3000 bytes"):
        check("bluesky", family * 121)  # 121 graphemes, but 25 bytes each
