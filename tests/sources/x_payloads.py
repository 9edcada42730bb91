"""Builders of X API v2 JSON bodies and headers, in the shapes the real API answers with."""

from __future__ import annotations

from typing import Any

API = "https://api.twitter.com/2"
BRAND_ID = "1000"
BRAND_HANDLE = "AcmeCare"


def user(
    user_id: str,
    username: str,
    *,
    followers: int = 10,
    verified: bool = False,
    name: str | None = None,
) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": username,
        "name": name or username.title(),
        "verified": verified,
        "public_metrics": {
            "followers_count": followers,
            "following_count": 5,
            "tweet_count": 100,
            "listed_count": 0,
            "like_count": 3,
        },
    }


BRAND = user(BRAND_ID, BRAND_HANDLE, followers=50_000, verified=True, name="Acme Support")


def tweet(
    tweet_id: str,
    author_id: str,
    text: str,
    *,
    created_at: str = "2024-05-01T12:00:00.000Z",
    conversation_id: str | None = None,
    replied_to: str | None = None,
    quoted: str | None = None,
    retweeted: str | None = None,
    in_reply_to_user_id: str | None = None,
    lang: str = "en",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": tweet_id,
        "edit_history_tweet_ids": [tweet_id],
        "text": text,
        "author_id": author_id,
        "created_at": created_at,
        "conversation_id": conversation_id or tweet_id,
        "lang": lang,
        "public_metrics": {
            "retweet_count": 1,
            "reply_count": 2,
            "like_count": 3,
            "quote_count": 0,
            "bookmark_count": 0,
            "impression_count": 40,
        },
    }
    refs = [
        {"type": kind, "id": ref}
        for kind, ref in (("replied_to", replied_to), ("quoted", quoted), ("retweeted", retweeted))
        if ref
    ]
    if refs:
        body["referenced_tweets"] = refs
    if in_reply_to_user_id:
        body["in_reply_to_user_id"] = in_reply_to_user_id
    return body


def page(
    tweets: list[dict[str, Any]],
    users: list[dict[str, Any]] | None = None,
    *,
    next_token: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One page of a timeline endpoint; no tweets gives the real empty answer (meta only)."""
    if not tweets:
        return {"meta": {"result_count": 0}}
    meta: dict[str, Any] = {
        "result_count": len(tweets),
        "newest_id": tweets[0]["id"],
        "oldest_id": tweets[-1]["id"],
    }
    if next_token:
        meta["next_token"] = next_token
    body: dict[str, Any] = {"data": tweets, "meta": meta}
    if users:
        body["includes"] = {"users": users}
    if errors:
        body["errors"] = errors
    return body


def not_found_error(tweet_id: str) -> dict[str, Any]:
    """The partial error X puts beside data when a referenced post cannot be expanded."""
    return {
        "value": tweet_id,
        "detail": f"Could not find tweet with referenced_tweets.id: [{tweet_id}].",
        "title": "Not Found Error",
        "resource_type": "tweet",
        "parameter": "referenced_tweets.id",
        "resource_id": tweet_id,
        "type": "https://api.twitter.com/2/problems/resource-not-found",
    }


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    """An X v2 error body (a problem object)."""
    return {"title": title, "detail": detail, "type": "about:blank", "status": status}


def rate_headers(remaining: int = 449, reset: int = 1_900_000_000) -> dict[str, str]:
    return {
        "x-rate-limit-limit": "450",
        "x-rate-limit-remaining": str(remaining),
        "x-rate-limit-reset": str(reset),
    }


def mentions_url(user_id: str = BRAND_ID) -> str:
    return f"{API}/users/{user_id}/mentions"


def timeline_url(user_id: str = BRAND_ID) -> str:
    return f"{API}/users/{user_id}/tweets"
