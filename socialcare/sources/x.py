"""The X (Twitter) mention source: X API v2 through tweepy, every failure as a SourceError.

Cursor keys kept in ``FetchResult.cursors`` (strings):
  user_id            the brand account's X user id (looked up by handle when the account has
                     no external_id)
  mentions_since_id  the newest mention seen
  timeline_since_id  the newest post of the brand's own timeline seen
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests
import tweepy
from urllib3.exceptions import NewConnectionError

from socialcare.config import Settings
from socialcare.errors import RateLimited, ReplyOutcomeUnknown, SourceError
from socialcare.sources.base import AccountRef, FetchResult, IncomingPost, SentReply
from socialcare.sources.x_parse import (
    EXPANSIONS,
    PLATFORM,
    TWEET_FIELDS,
    USER_FIELDS,
    as_payload,
    brand_reply_post,
    comparable_text,
    describe_problems,
    max_id,
    posts_from_page,
    problem_of_body,
    seconds_until_reset,
)

log = logging.getLogger(__name__)

# Reconciling a reply reads the brand's whole timeline since the post it answers (since_id bounds
# it): under load the reply can be hundreds of posts deep by the time the check runs, and a reply
# published but not found would be marked failed, inviting a person to post it twice. The user
# timeline reaches back 3,200 posts at most: 32 pages of 100.
FIND_REPLY_PAGES = 32
# tweepy.Client attribute -> the environment variable that sets it.
USER_CONTEXT_VARS = {
    "consumer_key": "X_API_KEY",
    "consumer_secret": "X_API_SECRET",
    "access_token": "X_ACCESS_TOKEN",
    "access_token_secret": "X_ACCESS_TOKEN_SECRET",
}


X_API = "https://api.twitter.com"


class TimeoutSession(requests.Session):
    """A session giving every request a default timeout (tweepy sets none); it also keeps the
    headers of the last response, for the rate-limit budget."""

    def __init__(self, timeout: float, base_url: str = X_API) -> None:
        super().__init__()
        self.timeout = timeout
        self.base_url = base_url.rstrip("/")
        self.last_headers: Mapping[str, str] = {}

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.base_url != X_API and isinstance(url, str) and url.startswith(X_API):
            # X_API_BASE_URL: a proxy or a local stand-in of the X API.
            url = self.base_url + url[len(X_API) :]
        response = super().request(method, url, *args, **kwargs)
        self.last_headers = response.headers
        return response

    @classmethod
    def install(cls, client: Any, timeout: float, base_url: str = X_API) -> TimeoutSession:
        """Replace a tweepy client's session by a TimeoutSession with the same settings."""
        old = getattr(client, "session", None)
        if isinstance(old, cls):
            old.timeout = timeout
            old.base_url = base_url.rstrip("/")
            return old
        new = cls(timeout, base_url)
        if isinstance(old, requests.Session):
            for name in requests.Session.__attrs__:
                setattr(new, name, getattr(old, name))
        client.session = new
        return new


def build_client(settings: Settings) -> tweepy.Client:
    """A tweepy client from the settings: bearer token and/or OAuth 1.0a user context."""
    return tweepy.Client(
        bearer_token=settings.x_bearer_token or None,
        consumer_key=settings.x_api_key or None,
        consumer_secret=settings.x_api_secret or None,
        access_token=settings.x_access_token or None,
        access_token_secret=settings.x_access_token_secret or None,
        return_type=tweepy.Response,
        wait_on_rate_limit=False,
    )


def _not_sent(exc: requests.RequestException) -> bool:
    """True when no connection was made, so a POST cannot have reached X."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)  # includes NameResolutionError


def _as_source_error(action: str, exc: Exception, *, sending: bool) -> SourceError:
    """A tweepy/requests failure as the SourceError the caller handles.

    sending: the request published something, so a failure after it may have reached X
    (5xx, timeout, dropped connection, unreadable answer) is a ReplyOutcomeUnknown.
    """
    unknown = "; the reply may have been published"
    if isinstance(exc, tweepy.HTTPException):
        status = getattr(exc.response, "status_code", None)
        try:
            detail = problem_of_body(exc.response.json())
        except ValueError:
            detail = ""
        detail = detail or "; ".join(str(m) for m in exc.api_messages)
        message = f"X {action} failed: HTTP {status} {getattr(exc.response, 'reason', '') or ''}"
        message = message.rstrip() + (f" ({detail})" if detail else "")
        if isinstance(exc, tweepy.TooManyRequests):
            reset = exc.reset_time
            retry_after = datetime.fromtimestamp(reset, tz=UTC) if reset is not None else None
            if retry_after is not None:
                message += f"; retry after {retry_after.isoformat()}"
            return RateLimited(message, retry_after=retry_after, status=status or 429)
        if isinstance(exc, tweepy.TwitterServerError):
            if sending:
                return ReplyOutcomeUnknown(message + unknown, status=status)
            return SourceError(message, status=status)
        return SourceError(message, permanent=True, status=status)
    message = f"X {action} failed: {type(exc).__name__}: {exc}"
    if sending and not (isinstance(exc, requests.RequestException) and _not_sent(exc)):
        return ReplyOutcomeUnknown(message + unknown)
    return SourceError(message)


class XSource:
    """MentionSource for X. Never sleeps on a rate limit: a 429 raises RateLimited.

    fetch reads two streams, the brand's mentions and the brand's own timeline (so replies made
    natively on X are seen), each following ``meta.next_token`` through every page newer than
    its since_id cursor. On the first poll of a stream (no since_id yet) only its first page,
    the newest posts, is read: it sets the cursor without paging through X's history (up to 800
    mentions and 3200 timeline posts) against the rate limit and the monthly post cap.
    """

    platform = PLATFORM

    def __init__(self, settings: Settings, client: tweepy.Client | None = None) -> None:
        self.settings = settings
        self.client = client if client is not None else build_client(settings)
        self.session = TimeoutSession.install(
            self.client, settings.http_timeout_seconds, settings.x_api_base_url
        )
        self._user_ids: dict[str, str] = {}

    def _call(
        self, action: str, method: Callable[..., Any], *, sending: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        """One request; tweepy and requests failures become SourceError."""
        try:
            payload = as_payload(method(**kwargs))
        except (tweepy.HTTPException, requests.RequestException, ValueError) as exc:
            raise _as_source_error(action, exc, sending=sending) from exc
        if payload.get("errors"):
            log.warning("X %s: partial errors: %s", action, describe_problems(payload["errors"]))
        return payload

    def _missing_user_context(self) -> list[str]:
        return [
            env for attr, env in USER_CONTEXT_VARS.items() if not getattr(self.client, attr, None)
        ]

    def _read_auth(self) -> bool:
        """Whether reads use the user context (only when no bearer token is configured)."""
        if getattr(self.client, "bearer_token", None):
            return False
        if not self._missing_user_context():
            return True
        raise SourceError(
            "X credentials missing: set X_BEARER_TOKEN, or X_API_KEY, X_API_SECRET, "
            "X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET",
            permanent=True,
        )

    def _brand_id(self, account: AccountRef, cursors: Mapping[str, Any]) -> tuple[str, int]:
        """The brand's X user id and the number of requests it took (0 or 1)."""
        if account.external_id:
            return str(account.external_id), 0
        if cursors.get("user_id"):
            return str(cursors["user_id"]), 0
        handle = account.handle.lstrip("@")
        if handle in self._user_ids:
            return self._user_ids[handle], 0
        if not handle:
            raise SourceError(
                f"X account {account.id} has no user id and no handle", permanent=True
            )
        action = f"user lookup of @{handle}"
        payload = self._call(
            action, self.client.get_user, username=handle, user_auth=self._read_auth()
        )
        data = payload.get("data")
        if not isinstance(data, dict) or not data.get("id"):
            problems = describe_problems(payload.get("errors") or []) or "no user in the answer"
            raise SourceError(f"X {action} failed: {problems}", permanent=True, status=404)
        self._user_ids[handle] = str(data["id"])
        return self._user_ids[handle], 1

    def _pages(
        self,
        action: str,
        method: Callable[..., Any],
        user_id: str,
        limit: int | None,
        **params: Any,
    ) -> list[dict[str, Any]]:
        """The pages of one timeline endpoint, following meta.next_token (limit None: all)."""
        pages: list[dict[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        user_auth = self._read_auth()
        while limit is None or len(pages) < limit:
            page = self._call(
                action,
                method,
                id=user_id,
                user_auth=user_auth,
                max_results=self.settings.x_page_size,
                pagination_token=token,
                expansions=EXPANSIONS,
                tweet_fields=TWEET_FIELDS,
                user_fields=USER_FIELDS,
                **params,
            )
            pages.append(page)
            token = (page.get("meta") or {}).get("next_token")
            if not token or token in seen:
                break
            seen.add(token)
        return pages

    def fetch(self, account: AccountRef, cursors: dict[str, Any]) -> FetchResult:
        observed_at = datetime.now(UTC)
        self.session.last_headers = {}
        user_id, requests_made = self._brand_id(account, cursors)
        new_cursors = {**cursors, "user_id": user_id}
        found: dict[str, IncomingPost] = {}
        streams = (
            ("mentions", self.client.get_users_mentions, "mentions_since_id"),
            ("timeline", self.client.get_users_tweets, "timeline_since_id"),
        )
        for name, method, key in streams:
            since_id = str(cursors[key]) if cursors.get(key) else None
            limit = None if since_id else 1
            action = f"{name} of user {user_id}"
            pages = self._pages(action, method, user_id, limit, since_id=since_id)
            requests_made += len(pages)
            ids: list[str] = []
            for page in pages:
                for post in posts_from_page(page, user_id):
                    ids.append(post.external_id)
                    found.setdefault(post.external_id, post)
            newest = max_id(since_id, ids)
            if newest is not None:
                new_cursors[key] = newest
        posts = sorted(found.values(), key=lambda p: (p.created_at, p.external_id.zfill(20)))
        return FetchResult(
            posts=posts,
            cursors=new_cursors,
            observed_at=observed_at,
            next_poll_in=seconds_until_reset(self.session.last_headers, datetime.now(UTC)),
            requests_made=requests_made,
        )

    def send_reply(self, account: AccountRef, *, in_reply_to: str, text: str) -> SentReply:
        missing = self._missing_user_context()
        if missing:
            raise SourceError(
                "X replies need the OAuth 1.0a user context: set X_API_KEY, X_API_SECRET, "
                f"X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET (missing: {', '.join(missing)})",
                permanent=True,
            )
        user_id, _ = self._brand_id(account, {})  # before posting: nothing may fail after it
        action = f"reply to {in_reply_to}"
        payload = self._call(
            action,
            self.client.create_tweet,
            sending=True,
            text=text,
            in_reply_to_tweet_id=in_reply_to,
            user_auth=True,
        )
        data = payload.get("data")
        if not isinstance(data, dict) or not data.get("id"):
            raise ReplyOutcomeUnknown(f"X {action}: the answer has no post id ({payload!r})")
        at = datetime.now(UTC)
        post = brand_reply_post(
            data,
            user_id=user_id,
            handle=account.handle.lstrip("@"),
            text=text,
            in_reply_to=in_reply_to,
            at=at,
        )
        return SentReply(external_id=post.external_id, created_at=at, post=post)

    def find_reply(self, account: AccountRef, *, in_reply_to: str, text: str) -> SentReply | None:
        """Look through the brand's timeline newer than in_reply_to (every page, as far back as
        the API reaches) for a reply to it with the same text (compared unescaped,
        whitespace-normalised, links masked)."""
        user_id, _ = self._brand_id(account, {})
        since_id = in_reply_to if in_reply_to.isdigit() else None
        method = self.client.get_users_tweets
        action = f"timeline of user {user_id}"
        pages = self._pages(action, method, user_id, FIND_REPLY_PAGES, since_id=since_id)
        wanted = comparable_text(text)
        for page in pages:
            for post in posts_from_page(page, user_id):
                if post.in_reply_to_external_id != in_reply_to:
                    continue
                if comparable_text(post.text) == wanted:
                    return SentReply(post.external_id, post.created_at, post)
        return None
