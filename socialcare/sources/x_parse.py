"""Pure helpers for the X source: X API v2 JSON in, IncomingPost and plain values out.

No network here; every function takes the decoded JSON of one response (``data``, ``includes``,
``errors``, ``meta``) or one of its parts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from socialcare.sources.base import IncomingPost

PLATFORM = "x"

# What the source asks X for; the parsing below reads these fields.
EXPANSIONS = [
    "author_id",
    "referenced_tweets.id",
    "referenced_tweets.id.author_id",
    "in_reply_to_user_id",
]
TWEET_FIELDS = [
    "created_at",
    "conversation_id",
    "in_reply_to_user_id",
    "referenced_tweets",
    "public_metrics",
    "lang",
    "author_id",
    "note_tweet",
]
USER_FIELDS = ["username", "name", "public_metrics", "verified"]

# X's snowflake ids carry their creation time: milliseconds since this epoch, shifted left 22 bits.
_SNOWFLAKE_EPOCH_MS = 1288834974657

# X escapes exactly these three characters in post text; nothing else is an entity.
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}
_ENTITY_RE = re.compile("|".join(_ENTITIES))
_LEADING_MENTIONS_RE = re.compile(r"^(?:@\w+\s+)+")
_URL_RE = re.compile(r"https?://\S+")
_SPACE_RE = re.compile(r"\s+")


def unescape(text: str) -> str:
    """Undo X's escaping of &, < and > in one pass (``&amp;lt;`` becomes ``&lt;``)."""
    return _ENTITY_RE.sub(lambda m: _ENTITIES[m.group(0)], text)


def comparable_text(text: str) -> str:
    """A reply's text reduced for matching: leading @mentions dropped (X may prepend them),
    links masked (X rewrites them to t.co), whitespace collapsed."""
    text = _SPACE_RE.sub(" ", text).strip()
    text = _LEADING_MENTIONS_RE.sub("", text + " ").strip()
    return _URL_RE.sub("<link>", text)


def parse_time(value: object, post_id: str) -> datetime:
    """An ISO time from X as an aware UTC datetime; without one, the time in the snowflake id."""
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    if post_id.isdigit():
        millis = (int(post_id) >> 22) + _SNOWFLAKE_EPOCH_MS
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    raise ValueError(f"X post {post_id!r} has no usable created_at ({value!r})")


def max_id(current: object, ids: Iterable[str]) -> str | None:
    """The largest of the current cursor and ids, compared as integers; None when there is none."""
    best: int | None = int(str(current)) if str(current or "").isdigit() else None
    for post_id in ids:
        if post_id.isdigit() and (best is None or int(post_id) > best):
            best = int(post_id)
    return None if best is None else str(best)


def users_by_id(payload: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The expanded users of a response (``includes.users``) by id."""
    includes = payload.get("includes") or {}
    return {
        str(u["id"]): u for u in includes.get("users") or [] if isinstance(u, dict) and "id" in u
    }


def _referenced(tweet: Mapping[str, Any], kind: str) -> str | None:
    for ref in tweet.get("referenced_tweets") or []:
        if isinstance(ref, dict) and ref.get("type") == kind and ref.get("id"):
            return str(ref["id"])
    return None


def tweet_to_post(
    tweet: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]], brand_user_id: str
) -> IncomingPost:
    """One X post (a ``data`` item) as an IncomingPost; its author is looked up in ``users``.

    A post whose author was not expanded (suspended, withheld) keeps its author id as handle.
    """
    post_id = str(tweet["id"])
    author_id = str(tweet.get("author_id") or "")
    author = users.get(author_id) or {}
    author_metrics = author.get("public_metrics") or {}
    note = tweet.get("note_tweet") or {}
    text = unescape(str(note.get("text") or tweet.get("text") or ""))
    conversation = tweet.get("conversation_id")
    followers = author_metrics.get("followers_count")
    return IncomingPost(
        platform=PLATFORM,
        external_id=post_id,
        author_external_id=author_id,
        author_handle=str(author.get("username") or author_id),
        text=text,
        created_at=parse_time(tweet.get("created_at"), post_id),
        is_brand=bool(author_id) and author_id == brand_user_id,
        is_retweet=_referenced(tweet, "retweeted") is not None or text.startswith("RT @"),
        in_reply_to_external_id=_referenced(tweet, "replied_to"),
        conversation_external_id=str(conversation) if conversation else None,
        quoted_external_id=_referenced(tweet, "quoted"),
        author_followers=int(followers) if isinstance(followers, int) else None,
        author_verified=bool(author.get("verified")),
        lang=tweet.get("lang") or None,
        metrics=dict(tweet.get("public_metrics") or {}),
        raw=dict(tweet),
    )


def posts_from_page(payload: Mapping[str, Any], brand_user_id: str) -> list[IncomingPost]:
    """Every post in one page's ``data`` (an absent ``data`` is an empty page)."""
    users = users_by_id(payload)
    return [
        tweet_to_post(tweet, users, brand_user_id)
        for tweet in payload.get("data") or []
        if isinstance(tweet, dict) and tweet.get("id")
    ]


def describe_problems(problems: Iterable[Any]) -> str:
    """X problem objects (title, detail, message) as one readable line."""
    parts: list[str] = []
    for problem in problems:
        if isinstance(problem, str):
            parts.append(problem)
        elif isinstance(problem, dict):
            title, detail = problem.get("title"), problem.get("detail") or problem.get("message")
            parts.append(": ".join(str(p) for p in (title, detail) if p) or str(problem))
    return "; ".join(parts)


def problem_of_body(body: object) -> str:
    """The title/detail of an X error body (a problem object, possibly with an errors array)."""
    if not isinstance(body, dict):
        return ""
    line = describe_problems([body]) if ("title" in body or "detail" in body) else ""
    nested = describe_problems(body.get("errors") or [])
    return "; ".join(p for p in (line, nested) if p)


def _plain(item: Any) -> Any:
    """tweepy's Tweet/User objects back to their JSON dicts."""
    data = getattr(item, "data", None)
    return data if isinstance(data, dict) else item


def as_payload(answer: Any) -> dict[str, Any]:
    """A client answer (tweepy.Response, a dict, or anything with .json()) as the JSON body."""
    if isinstance(answer, dict):
        return answer
    if not hasattr(answer, "includes") and callable(getattr(answer, "json", None)):
        body = answer.json()
        return body if isinstance(body, dict) else {}
    data = answer.data
    includes = {
        key: [_plain(i) for i in value] if isinstance(value, list) else value
        for key, value in (answer.includes or {}).items()
    }
    return {
        "data": [_plain(d) for d in data] if isinstance(data, list) else _plain(data),
        "includes": includes,
        "errors": list(answer.errors or []),
        "meta": dict(answer.meta or {}),
    }


def seconds_until_reset(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds until X's rate window resets when the answer said no request is left, else None."""
    remaining, reset = headers.get("x-rate-limit-remaining"), headers.get("x-rate-limit-reset")
    if remaining != "0" or not reset or not reset.isdigit():
        return None
    return max(0.0, int(reset) - now.timestamp())


def brand_reply_post(
    data: Mapping[str, Any], *, user_id: str, handle: str, text: str, in_reply_to: str, at: datetime
) -> IncomingPost:
    """The brand's just-published reply as a post (X's POST answer has only id and text)."""
    return IncomingPost(
        platform=PLATFORM,
        external_id=str(data["id"]),
        author_external_id=user_id,
        author_handle=handle,
        text=text,
        created_at=at,
        is_brand=True,
        in_reply_to_external_id=in_reply_to,
        raw=dict(data),
    )
