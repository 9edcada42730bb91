"""Pure helpers for the X source: X API v2 JSON in, IncomingPost and plain values out.

No network here; every function takes the decoded JSON of one response (``data``, ``includes``,
``errors``, ``meta``) or one of its parts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from socialcare.errors import ReplyOutcomeUnknown, SourceError
from socialcare.sources.base import IncomingPost, epoch_time, wait_if_spent
from socialcare.sources.parse_common import as_list, as_mapping
from socialcare.sources.parse_common import comparable_text as comparable_text

log = logging.getLogger(__name__)

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
# X ids are unsigned 64-bit numbers: at most 20 decimal digits.
_MAX_ID_DIGITS = 20

# X escapes exactly these three characters in post text; nothing else is an entity.
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}
_ENTITY_RE = re.compile("|".join(_ENTITIES))


def unescape(text: str) -> str:
    """Undo X's escaping of &, < and > in one pass (``&amp;lt;`` becomes ``&lt;``)."""
    return _ENTITY_RE.sub(lambda m: _ENTITIES[m.group(0)], text)


def _numeric_id(value: object) -> int | None:
    """An X id as a number: a string of at most 20 ASCII digits, else None."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value) if len(value) <= _MAX_ID_DIGITS else None
    return None


def _id_of(value: object) -> str | None:
    """An id field of X JSON as a string of digits, else None: X sends ids as strings of at most
    20 ASCII digits (some clients decode them as numbers, accepted below 2**64)."""
    if isinstance(value, str):  # checked without converting it to a number
        ok = len(value) <= _MAX_ID_DIGITS and value.isascii() and value.isdigit()
        return str(value) if ok else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64:
        return str(value)
    return None


def _brief(value: object, limit: int = 200) -> str:
    """The shape of a JSON value for an error message, never its texts (they are public posts
    and error messages reach logs above DEBUG): keys, lengths, ids and numbers only."""
    if isinstance(value, dict):
        keys = ", ".join(sorted(str(k)[:30] for k in value)[:15])
        post_id = value.get("id")
        named = f" id={str(post_id)[:25]!r}" if isinstance(post_id, str | int) else ""
        text = f"object{named} with keys [{keys}]"
    elif isinstance(value, list):
        text = f"array of {len(value)}"
    elif isinstance(value, str):
        text = f"string of {len(value)} characters"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def parse_time(value: object, post_id: str) -> datetime:
    """An ISO time from X as an aware UTC datetime; without one, the time in the snowflake id.

    Raises ValueError when neither gives a time.
    """
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            pass  # not a time, or one that leaves datetime's range in UTC: use the id
    snowflake = _numeric_id(post_id)
    if snowflake is not None:
        millis = (snowflake >> 22) + _SNOWFLAKE_EPOCH_MS
        try:
            return datetime.fromtimestamp(millis / 1000, tz=UTC)
        except (ValueError, OverflowError, OSError):
            pass
    raise ValueError(f"X post {post_id[:40]!r} has no usable created_at ({_brief(value, 60)})")


def max_id(current: object, ids: Iterable[str]) -> str | None:
    """The largest of the current cursor and ids, compared as integers; None when there is none.

    Values that are not X ids (at most 20 ASCII digits) are ignored.
    """
    best = _numeric_id(str(current)) if current else None
    for post_id in ids:
        number = _numeric_id(post_id)
        if number is not None and (best is None or number > best):
            best = number
    return None if best is None else str(best)


def users_by_id(payload: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The expanded users of a response (``includes.users``) by id; malformed ones are left out."""
    users: dict[str, Mapping[str, Any]] = {}
    for user in as_list(as_mapping(payload.get("includes")).get("users")):
        user_id = _id_of(user.get("id")) if isinstance(user, Mapping) else None
        if user_id is not None:
            users[user_id] = user
    return users


def _references(tweet: Mapping[str, Any]) -> dict[str, str]:
    """The first usable id of each kind in a post's referenced_tweets (replied_to, quoted,
    retweeted), in one pass."""
    found: dict[str, str] = {}
    for ref in as_list(tweet.get("referenced_tweets")):
        if isinstance(ref, Mapping):
            kind, ref_id = ref.get("type"), _id_of(ref.get("id"))
            if isinstance(kind, str) and ref_id is not None:
                found.setdefault(kind, ref_id)
    return found


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def tweet_to_post(
    tweet: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]], brand_user_id: str
) -> IncomingPost:
    """One X post (a ``data`` item) as an IncomingPost; its author is looked up in ``users``.

    A post whose author was not expanded (suspended, withheld) keeps its author id as handle.
    A field of the wrong type counts as absent; a post without a usable id, or without a usable
    time (neither created_at nor a snowflake id), raises SourceError.
    """
    post_id = _id_of(tweet.get("id"))
    if post_id is None:
        raise SourceError(f"X post without a usable id: {_brief(tweet)}")
    try:
        created_at = parse_time(tweet.get("created_at"), post_id)
    except ValueError as exc:
        raise SourceError(str(exc)) from None
    author_id = _id_of(tweet.get("author_id")) or ""
    author = as_mapping(users.get(author_id))
    author_metrics = as_mapping(author.get("public_metrics"))
    note = as_mapping(tweet.get("note_tweet"))
    text = unescape(_text(note.get("text")) or _text(tweet.get("text")))
    followers = author_metrics.get("followers_count")
    lang = tweet.get("lang")
    refs = _references(tweet)
    return IncomingPost(
        platform=PLATFORM,
        external_id=post_id,
        author_external_id=author_id,
        author_handle=_text(author.get("username")) or author_id,
        text=text,
        created_at=created_at,
        is_brand=bool(author_id) and author_id == brand_user_id,
        is_retweet="retweeted" in refs or text.startswith("RT @"),
        in_reply_to_external_id=refs.get("replied_to"),
        conversation_external_id=_id_of(tweet.get("conversation_id")),
        quoted_external_id=refs.get("quoted"),
        author_followers=(
            followers if isinstance(followers, int) and not isinstance(followers, bool) else None
        ),
        author_verified=author.get("verified") is True,
        lang=lang if isinstance(lang, str) and lang else None,
        metrics=dict(as_mapping(tweet.get("public_metrics"))),
        raw=dict(tweet),
    )


def posts_from_page(payload: Mapping[str, Any], brand_user_id: str) -> list[IncomingPost]:
    """Every post in one page's ``data`` (an absent ``data`` is an empty page).

    A page that is not a JSON object, or whose ``data`` is not an array, raises SourceError; a
    single malformed post in it is skipped with a warning, so it cannot block the others.
    """
    if not isinstance(payload, Mapping):
        raise SourceError(f"X page is not a JSON object: {_brief(payload)}")
    data = payload.get("data")
    if data is None:
        return []
    if not isinstance(data, list):
        raise SourceError(f"X page data is not an array of posts: {_brief(data)}")
    users = users_by_id(payload)
    posts: list[IncomingPost] = []
    for tweet in data:
        if not isinstance(tweet, Mapping):
            log.warning("X page: skipping a post that is not a JSON object: %s", _brief(tweet))
            continue
        try:
            posts.append(tweet_to_post(tweet, users, brand_user_id))
        except SourceError as exc:
            log.warning("X page: skipping a malformed post: %s", exc)
    return posts


def describe_problems(problems: object) -> str:
    """X problem objects (title, detail, message), or one of them, as one readable line."""
    if isinstance(problems, str | Mapping) or not isinstance(problems, list | tuple):
        problems = [problems]
    parts: list[str] = []
    for problem in problems:
        if isinstance(problem, str):
            parts.append(problem)
        elif isinstance(problem, Mapping):
            title, detail = problem.get("title"), problem.get("detail") or problem.get("message")
            parts.append(": ".join(str(p) for p in (title, detail) if p) or _brief(problem))
    return "; ".join(parts)


def problem_of_body(body: object) -> str:
    """The title/detail of an X error body (a problem object, possibly with an errors array)."""
    if not isinstance(body, Mapping):
        return ""
    line = describe_problems([body]) if ("title" in body or "detail" in body) else ""
    nested = describe_problems(body.get("errors") or [])
    return "; ".join(p for p in (line, nested) if p)


def _plain(item: Any) -> Any:
    """tweepy's Tweet/User objects back to their JSON dicts."""
    data = getattr(item, "data", None)
    return data if isinstance(data, dict) else item


def as_payload(answer: Any) -> dict[str, Any]:
    """A client answer (an HTTP response, tweepy.Response, a dict, or anything with .json()) as
    the JSON body. A response's bytes are parsed with orjson (several times faster than the
    standard library on a page of 100 posts); its errors are ValueErrors all the same."""
    if isinstance(answer, dict):
        return answer
    if isinstance(getattr(answer, "content", None), bytes):
        body = orjson.loads(answer.content)
        return body if isinstance(body, dict) else {}
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
    reset = epoch_time(headers.get("x-rate-limit-reset"))
    return wait_if_spent(headers.get("x-rate-limit-remaining"), reset, now)


def brand_reply_post(
    data: Mapping[str, Any], *, user_id: str, handle: str, text: str, in_reply_to: str, at: datetime
) -> IncomingPost:
    """The brand's just-published reply as a post (X's POST answer has only id and text).

    An answer without a usable id raises ReplyOutcomeUnknown: the reply may be published.
    """
    post_id = _id_of(data.get("id"))
    if post_id is None:
        raise ReplyOutcomeUnknown(f"X reply to {in_reply_to}: the answer has no post id")
    return IncomingPost(
        platform=PLATFORM,
        external_id=post_id,
        author_external_id=user_id,
        author_handle=handle,
        text=text,
        created_at=at,
        is_brand=True,
        in_reply_to_external_id=in_reply_to,
        raw=dict(data),
    )
