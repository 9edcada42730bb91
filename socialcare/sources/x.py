"""The X (Twitter) mention source: X API v2 through tweepy, every failure as a SourceError.

Cursor keys kept in ``FetchResult.cursors`` (strings):
  user_id            the brand account's X user id (looked up by handle when the account has
                     no external_id)
  mentions_since_id  the newest mention seen
  timeline_since_id  the newest post of the brand's own timeline seen
  *_pass, *_fill     a poll in progress (see x_poll): the posts committed so far, so that a
                     poll killed mid-pagination resumes after its last committed page
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import requests
import tweepy

from socialcare.config import Settings
from socialcare.errors import RateLimited, ReplyOutcomeUnknown, SourceError
from socialcare.sources.base import (
    AccountRef,
    FetchResult,
    IncomingPost,
    RateWindow,
    SentReply,
    SourceNote,
    pick_reply,
)
from socialcare.sources.budget import RateBudget, budget_from_settings, window_from_headers
from socialcare.sources.x_http import (
    X_WINDOW_SECONDS,
    TimeoutSession,
    as_source_error,
    build_client,
)
from socialcare.sources.x_parse import (
    EXPANSIONS,
    PLATFORM,
    TWEET_FIELDS,
    USER_FIELDS,
    as_payload,
    brand_reply_post,
    comparable_text,
    describe_problems,
    posts_from_page,
)
from socialcare.sources.x_poll import poll_pages

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


class XSource:
    """MentionSource for X. Never sleeps on a rate limit: a 429 raises RateLimited.

    fetch reads two streams, the brand's mentions and the brand's own timeline (so replies made
    natively on X are seen), each following ``meta.next_token`` through every page newer than
    its since_id cursor. On the first poll of a stream (no since_id yet) only its first page,
    the newest posts, is read: it sets the cursor without paging through X's history (up to 800
    mentions and 3200 timeline posts) against the rate limit and the monthly post cap.
    """

    platform = PLATFORM

    def __init__(
        self,
        settings: Settings,
        client: tweepy.Client | None = None,
        budget: RateBudget | None = None,
    ) -> None:
        self.settings = settings
        self.client = client if client is not None else build_client(settings)
        self.session = TimeoutSession.install(
            self.client, settings.http_timeout_seconds, settings.x_api_base_url
        )
        self.budget = budget if budget is not None else budget_from_settings(settings)
        self._user_ids: dict[str, str] = {}
        # What the poll in progress saw: rate windows by endpoint, partial errors.
        self._windows: dict[str, RateWindow] = {}
        self._notes: list[SourceNote] = []

    @property
    def mentions_window(self) -> int:
        return self.settings.x_mentions_window

    @property
    def page_size(self) -> int:
        return self.settings.x_page_size

    def note(self, note: SourceNote) -> None:
        self._notes.append(note)

    def take_notes(self) -> list[SourceNote]:
        notes, self._notes = self._notes, []
        return notes

    def rate_windows(self) -> dict[str, RateWindow]:
        return dict(self._windows)

    def remember_rate_windows(self, account_id: int, windows: Mapping[str, RateWindow]) -> None:
        """Seed the budget with windows stored earlier, where it knows nothing newer."""
        for endpoint, window in windows.items():
            if self.budget.window(account_id, endpoint) is None:
                self.budget.record(account_id, endpoint, window)

    def _call(
        self,
        action: str,
        method: Callable[..., Any],
        *,
        account: AccountRef,
        endpoint: str,
        sending: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One request within the account's budget for the endpoint (RateLimited, raised before
        any request, when it is spent); tweepy and requests failures become SourceError."""
        shared = not kwargs.get("user_auth")  # app-only auth: one limit for every account
        retry_at = self.budget.take(account.id, endpoint, datetime.now(UTC), shared=shared)
        if retry_at is not None:
            raise RateLimited(
                f"X {action}: @{account.handle.lstrip('@')}'s {endpoint} budget is spent "
                f"until {retry_at.isoformat()}",
                retry_after=retry_at,
            )
        self.session.last_headers = {}
        try:
            payload = as_payload(method(**kwargs))
        except (tweepy.HTTPException, requests.RequestException, ValueError) as exc:
            self._record_window(account, endpoint)
            if isinstance(exc, ValueError) and not sending:  # a truncated or garbled body
                raise SourceError(
                    f"X {action} for @{account.handle.lstrip('@')} (endpoint {endpoint}) "
                    f"answered malformed JSON ({type(exc).__name__}: {exc}); cursor unchanged"
                ) from exc
            raise as_source_error(action, exc, sending=sending) from exc
        self._record_window(account, endpoint)
        if payload.get("errors"):
            problems = describe_problems(payload["errors"])
            log.warning("X %s: partial errors: %s", action, problems)
            self.note(
                SourceNote(
                    "partial_errors",
                    "info",
                    f"X {endpoint} answered data with errors: {problems}"[:2000],
                    {"endpoint": endpoint, "errors": payload["errors"][:20]},
                )
            )
        return payload

    def poll_floor(self, account: AccountRef) -> tuple[float, bool]:
        """Seconds the next poll should wait at least so that the account's requests spread over
        what is left of its windows (its fair share of the app's), and whether a window is spent."""
        now = datetime.now(UTC)
        floor, spent = 0.0, False
        shared = not self._read_auth()
        for endpoint in ("mentions", "tweets"):
            window = self.budget.window(account.id, endpoint)
            if window is None or now >= window.reset_at:
                continue
            # X's read windows are 15 minutes; a reset further off is not one to spread over.
            left = min((window.reset_at - now).total_seconds(), X_WINDOW_SECONDS)
            allowed = min(
                window.remaining, self.budget.share(account.id, endpoint, now, shared=shared)
            )
            spent = spent or allowed <= 0
            floor = max(floor, left if allowed <= 0 else left / allowed)
        return floor, spent

    def _record_window(self, account: AccountRef, endpoint: str) -> None:
        window = window_from_headers(self.session.last_headers)
        if window is not None:
            self.budget.record(account.id, endpoint, window)
            self._windows[endpoint] = window

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

    def brand_id(self, account: AccountRef, cursors: Mapping[str, Any]) -> tuple[str, int]:
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
            action,
            self.client.get_user,
            account=account,
            endpoint="users/by/username",
            username=handle,
            user_auth=self._read_auth(),
        )
        data = payload.get("data")
        if not isinstance(data, dict) or not data.get("id"):
            problems = describe_problems(payload.get("errors") or []) or "no user in the answer"
            raise SourceError(f"X {action} failed: {problems}", permanent=True, status=404)
        self._user_ids[handle] = str(data["id"])
        return self._user_ids[handle], 1

    def page(
        self,
        account: AccountRef,
        endpoint: str,
        *,
        user_id: str,
        token: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """One page of the brand's mentions or timeline ("mentions" or "tweets")."""
        mentions = endpoint == "mentions"
        method = self.client.get_users_mentions if mentions else self.client.get_users_tweets
        name = "mentions" if mentions else "timeline"
        return self._call(
            f"{name} of @{account.handle.lstrip('@')} (user {user_id})",
            method,
            account=account,
            endpoint=endpoint,
            id=user_id,
            user_auth=self._read_auth(),
            max_results=self.settings.x_page_size,
            pagination_token=token,
            expansions=EXPANSIONS,
            tweet_fields=TWEET_FIELDS,
            user_fields=USER_FIELDS,
            **params,
        )

    def search_page(self, account: AccountRef, query: str, **params: Any) -> dict[str, Any]:
        """One page of recent search (the last 7 days), at most 100 posts."""
        return self._call(
            f"recent search for @{account.handle.lstrip('@')}",
            self.client.search_recent_tweets,
            account=account,
            endpoint="search",
            query=query,
            user_auth=self._read_auth(),
            max_results=max(10, self.settings.x_page_size),
            expansions=EXPANSIONS,
            tweet_fields=TWEET_FIELDS,
            user_fields=USER_FIELDS,
            **params,
        )

    def _pages(
        self, account: AccountRef, user_id: str, limit: int, **params: Any
    ) -> list[dict[str, Any]]:
        """Up to limit pages of the brand's timeline, following meta.next_token."""
        pages: list[dict[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        while len(pages) < limit:
            page = self.page(account, "tweets", user_id=user_id, token=token, **params)
            pages.append(page)
            token = (page.get("meta") or {}).get("next_token")
            if not token or token in seen:
                break
            seen.add(token)
        return pages

    def fetch_pages(self, account: AccountRef, cursors: dict[str, Any]) -> Iterator[FetchResult]:
        """The poll page by page (see socialcare.sources.x_poll)."""
        self._windows, self._notes = {}, []
        yield from poll_pages(self, account, cursors)

    def fetch(self, account: AccountRef, cursors: dict[str, Any]) -> FetchResult:
        """Every page of one poll as one result (the pages' posts, the final cursors)."""
        found: dict[str, IncomingPost] = {}
        requests_made = 0
        notes: list[SourceNote] = []
        last: FetchResult | None = None
        for last in self.fetch_pages(account, cursors):
            requests_made += last.requests_made
            notes += last.notes
            for post in last.posts:
                found.setdefault(post.external_id, post)
        assert last is not None and last.final
        last.posts = sorted(found.values(), key=lambda p: (p.created_at, p.external_id.zfill(20)))
        last.requests_made, last.notes = requests_made, notes
        return last

    def send_reply(self, account: AccountRef, *, in_reply_to: str, text: str) -> SentReply:
        missing = self._missing_user_context()
        if missing:
            raise SourceError(
                "X replies need the OAuth 1.0a user context: set X_API_KEY, X_API_SECRET, "
                f"X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET (missing: {', '.join(missing)})",
                permanent=True,
            )
        user_id, _ = self.brand_id(account, {})  # before posting: nothing may fail after it
        action = f"reply to {in_reply_to}"
        payload = self._call(
            action,
            self.client.create_tweet,
            account=account,
            endpoint="create",
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

    def find_reply(
        self,
        account: AccountRef,
        *,
        in_reply_to: str,
        text: str,
        sent_after: datetime | None = None,
        known: Collection[str] = (),
    ) -> SentReply | None:
        """Look through the brand's timeline newer than in_reply_to (every page, as far back as
        the API reaches) for the reply an attempt begun at sent_after published (see pick_reply:
        matched by author, parent, time and id; the same text, compared unescaped,
        whitespace-normalised, links masked, decides between several)."""
        user_id, _ = self.brand_id(account, {})
        since_id = in_reply_to if in_reply_to.isdigit() else None
        pages = self._pages(account, user_id, FIND_REPLY_PAGES, since_id=since_id)
        wanted = comparable_text(text)
        candidates = [post for page in pages for post in posts_from_page(page, user_id)]
        return pick_reply(
            candidates,
            in_reply_to=in_reply_to,
            same_text=lambda post: comparable_text(post.text) == wanted,
            sent_after=sent_after,
            known=known,
        )
