"""A post's public address, per source, from posts as each source's parser stores them."""

from __future__ import annotations

from typing import Any

import pytest

from socialcare.sources.bluesky_parse import record_post
from socialcare.sources.mastodon_parse import status_to_post
from socialcare.sources.urls import post_url, web_address
from socialcare.sources.x_parse import tweet_to_post

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
SERVER = "https://social.example"


def test_an_x_post_links_to_its_author_and_id() -> None:
    post = tweet_to_post(
        {"id": "1850000000000000001", "author_id": "42", "text": "hi", "created_at": None},
        {"42": {"id": "42", "username": "AcmeCare"}},
        "42",
    )
    url = post_url(post.platform, post.external_id, handle=post.author_handle)
    assert url == "https://x.com/AcmeCare/status/1850000000000000001"
    assert post_url("x", "1850000000000000001") == "https://x.com/i/status/1850000000000000001"
    assert post_url("x", "1850000000000000001", handle="@AcmeCare") == url


def test_twcs_and_its_replay_use_the_x_form_but_a_made_up_reply_id_has_no_page() -> None:
    assert post_url("twcs", "119237", handle="AppleSupport") == (
        "https://x.com/AppleSupport/status/119237"
    )
    assert post_url("twcs", "r0123456789abcdef", handle="AppleSupport") is None
    assert post_url("x", "") is None and post_url("x", None) is None


def _status(**fields: Any) -> dict[str, Any]:
    return {
        "id": "113000000000000001",
        "created_at": "2026-12-01T10:00:00.000Z",
        "content": "<p>hello</p>",
        "account": {"id": "7", "acct": "brand", "username": "brand"},
        **fields,
    }


def test_a_mastodon_status_links_to_the_url_its_server_gave() -> None:
    given = "https://social.example/@brand/113000000000000001"
    post = status_to_post(_status(url=given, uri="https://social.example/users/brand/s/1"), "7")
    assert post_url(post.platform, post.external_id, handle=post.author_handle, raw=post.raw) == (
        given
    )
    # A remote author's status: the page its own server gave, not a guess.
    remote = status_to_post(
        _status(
            url="https://other.example/@carol/99",
            account={"id": "8", "acct": "carol@other.example"},
        ),
        "7",
    )
    assert post_url("mastodon", remote.external_id, raw=remote.raw, server=SERVER) == (
        "https://other.example/@carol/99"
    )


def test_a_mastodon_status_without_a_url_is_found_on_the_server() -> None:
    post = status_to_post(
        _status(url=None, account={"id": "8", "acct": "carol@other.example"}), "7"
    )
    url = post_url("mastodon", post.external_id, handle=post.author_handle, raw=post.raw)
    assert url is None, "no stored url and no server: no page"
    assert post_url(
        "mastodon", post.external_id, handle=post.author_handle, raw=post.raw, server=SERVER + "/"
    ) == ("https://social.example/@carol@other.example/113000000000000001")


@pytest.mark.parametrize(
    "given",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https://social.example/@brand/1\u202e",
        "https://social.example/@brand/1 onclick",
        "//social.example/@brand/1",
        "https:///nohost",
        12,
    ],
)
def test_a_url_a_server_gives_is_used_only_when_it_is_a_web_address(given: object) -> None:
    assert web_address(given) is None
    url = post_url("mastodon", "55", handle="brand", raw={"url": given}, server=SERVER)
    assert url == "https://social.example/@brand/55"


def _view(uri: str, did: str = DID) -> dict[str, Any]:
    return {
        "uri": uri,
        "cid": "bafyreib2rxk3rh6kzwq",
        "author": {"did": did, "handle": "acme.bsky.social"},
        "record": {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2026-12-01T10:00Z"},
        "indexedAt": "2026-12-01T10:00:01.000Z",
    }


def test_a_bluesky_post_stored_as_did_and_rkey_links_to_bsky_app() -> None:
    post = record_post(_view(f"at://{DID}/app.bsky.feed.post/3lbqv7d6k2c2a"), DID)
    assert post.external_id == f"{DID}/3lbqv7d6k2c2a"
    assert post_url(post.platform, post.external_id, handle=post.author_handle) == (
        f"https://bsky.app/profile/{DID}/post/3lbqv7d6k2c2a"
    )
    # The form the API was built for before, a full AT URI, is not how ids are stored.
    assert post_url("bluesky", f"{DID}/app.bsky.feed.repost/3lbqv7d6k2c2a") is None
    assert post_url("bluesky", "not a did") is None


def test_a_bluesky_post_with_a_hashed_id_links_through_its_stored_uri() -> None:
    did = "did:web:" + "very-long-host-name." * 3 + "example"
    post = record_post(_view(f"at://{did}/app.bsky.feed.post/3lbqv7d6k2c2b", did), did)
    assert post.external_id.startswith("h:")
    assert post_url("bluesky", post.external_id, raw=post.raw) == (
        f"https://bsky.app/profile/{did}/post/3lbqv7d6k2c2b"
    )
    assert post_url("bluesky", post.external_id) is None


def test_an_unknown_platform_and_odd_handles() -> None:
    assert post_url("fax", "123", handle="x") is None
    assert post_url("x", "123", handle="a/b?c") == "https://x.com/a%2Fb%3Fc/status/123"
