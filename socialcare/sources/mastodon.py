"""The Mastodon mention source: the Mastodon REST API through Mastodon.py, every failure as a
SourceError.

Cursor keys kept in ``FetchResult.cursors`` (strings):
  account_id              the brand's account id on its server (from verify_credentials)
  notifications_min_id    the newest mention notification seen; NOTHING_BEFORE ("0") when the
                          first poll found none, so the next poll reads every newer page
  statuses_min_id         the newest status of the brand's own seen (NOTHING_BEFORE likewise)
  threads                 [[status id, watch until (epoch seconds)], ...]: customer posts the
                          brand answered, whose later replies are read from their context, the
                          least recently read first

Visibility: private (followers-only) and direct mentions are work like any other, and their
answers go out as direct statuses seen only by the accounts they mention (see
``reply_visibility``); a reply is never wider than the post it answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from mastodon import Mastodon, MastodonError

from socialcare.config import Settings
from socialcare.errors import ReplyOutcomeUnknown, SourceError
from socialcare.sources.base import (
    ACCOUNT_WINDOW,
    AccountRef,
    FetchResult,
    IncomingPost,
    RateWindow,
    SentReply,
    SourceNote,
    pick_reply,
)
from socialcare.sources.budget import AccountBudget
from socialcare.sources.mastodon_api import (
    TimeoutSession,
    as_source_error,
    idempotency_key,
    reply_plan,
)
from socialcare.sources.mastodon_parse import (
    PLATFORM,
    comparable_text,
    id_key,
    item_ids,
    newest_id,
    posts_of,
    rate_window,
    seconds_until_reset,
    status_to_post,
)
from socialcare.sources.mastodon_threads import watch_threads

log = logging.getLogger(__name__)

# Pages read in one poll per stream. min_id pages are contiguous from the cursor up, so a poll
# that stops here has a gap-free cursor and the next poll, due at once, continues from it.
MAX_PAGES = 50
STATUS_PAGE_MAX = 40  # Mastodon's largest page of statuses
# The cursor of a stream whose first poll found it empty: every id is newer, so the next poll
# reads all that arrived since through every page (no "first poll" reading only the newest).
NOTHING_BEFORE = "0"
# Threads the brand answered are read again for replies that do not mention the brand (Mastodon
# notifies only mentions) for this long, the least recently read first: at least
# THREADS_PER_POLL a poll, more while the rate window has more than half its requests left.
# (The watch itself, its length and its bound: mastodon_threads.py.)
THREADS_PER_POLL = 5
THREADS_PER_POLL_MAX = 40
FIND_REPLY_PAGES = 25


class MastodonSource:
    """MentionSource for one Mastodon account (MASTODON_API_BASE_URL, MASTODON_ACCESS_TOKEN).

    Never sleeps on a rate limit (Mastodon.py's "throw" mode): a 429 raises RateLimited.
    fetch reads the brand's mention notifications and its own statuses, each from its min_id
    cursor through every newer page (Link rel="prev"), and the context of a few answered
    threads. The first poll of a stream reads only its newest page: it sets the cursor without
    paging through history.
    """

    platform = PLATFORM

    def __init__(self, settings: Settings, client: Mastodon | None = None) -> None:
        self.settings = settings
        self.session = TimeoutSession(settings.http_timeout_seconds)
        self._client = client
        self._account_ids: dict[str, str] = {}
        self.window: RateWindow | None = None  # the newest rate window an answer gave
        self.rate = AccountBudget(settings, "Mastodon")

    @property
    def client(self) -> Mastodon:
        if self._client is None:
            missing = [
                name
                for name, value in (
                    ("MASTODON_API_BASE_URL", self.settings.mastodon_api_base_url),
                    ("MASTODON_ACCESS_TOKEN", self.settings.mastodon_access_token),
                )
                if not value
            ]
            if missing:
                raise SourceError(
                    f"Mastodon credentials missing: set {' and '.join(missing)}", permanent=True
                )
            self._client = Mastodon(
                access_token=self.settings.mastodon_access_token,
                api_base_url=self.settings.mastodon_api_base_url,
                request_timeout=self.settings.http_timeout_seconds,
                ratelimit_method="throw",
                version_check_mode="none",
                session=self.session,
            )
        return self._client

    def _call(
        self,
        action: str,
        method: Callable[..., Any],
        *args: Any,
        sending: bool = False,
        **kwargs: Any,
    ) -> Any:
        """One request within the account's rate budget (RateLimited, before any request, while
        it is spent); Mastodon.py failures become SourceError."""
        self.rate.take(action)
        self.session.last_headers = {}
        try:
            return method(*args, **kwargs)
        except (MastodonError, ValueError, TypeError, AttributeError, KeyError) as exc:
            # Besides its own errors, Mastodon.py can fail on odd answers while reading them.
            raise as_source_error(action, exc, self.session, sending=sending) from exc
        finally:
            window = rate_window(self.session.last_headers)
            self.rate.record(window)
            self.window = window or self.window

    def _brand_id(self, account: AccountRef, cursors: Mapping[str, Any]) -> tuple[str, int]:
        """The brand's account id and the requests it took (0 or 1). The token must be the
        brand's: replies go out as whoever the token belongs to."""
        if account.external_id:
            return str(account.external_id), 0
        if cursors.get("account_id"):
            return str(cursors["account_id"]), 0
        handle = account.handle.lstrip("@")
        if handle in self._account_ids:
            return self._account_ids[handle], 0
        me = self._call("verify_credentials", self.client.account_verify_credentials)
        me = me if isinstance(me, Mapping) else {}
        username, me_id = me.get("username"), me.get("id")
        if not isinstance(username, str) or me_id is None:
            raise SourceError("Mastodon verify_credentials: the answer has no account")
        if username.lower() != handle.split("@", 1)[0].lower():
            raise SourceError(
                f"MASTODON_ACCESS_TOKEN belongs to @{username[:64]}, not to @{handle}",
                permanent=True,
            )
        self._account_ids[handle] = str(me_id)
        return str(me_id), 1

    def _pages(
        self, action: str, method: Callable[..., Any], cursor: str | None, **params: Any
    ) -> tuple[list[Any], bool]:
        """Pages newer than cursor, oldest first, following rel="prev" until an empty page
        (cursor None: the newest page only); and whether pages were left for the next poll."""
        if cursor:
            params["min_id"] = cursor
        page = self._call(action, method, **params)
        pages = [page]
        seen = {cursor}
        while cursor and page and isinstance(page, list):
            prev = getattr(page, "_pagination_prev", None)
            newer = prev.get("min_id") if isinstance(prev, Mapping) else None
            if newer is None and len(page) >= params.get("limit", 0):
                # A full page without Link headers (some servers omit them): page on by hand.
                newer = newest_id(None, item_ids(page))
                prev = None
            if newer is None or str(newer) in seen:
                break
            if len(pages) >= MAX_PAGES:
                return pages, True
            seen.add(str(newer))
            if prev is not None:
                page = self._call(action, self.client.fetch_previous, page)
            else:
                page = self._call(action, method, **{**params, "min_id": newer})
            pages.append(page)
        return pages, False

    def fetch(self, account: AccountRef, cursors: dict[str, Any]) -> FetchResult:
        self.rate.account_id = account.id
        observed_at = datetime.now(UTC)
        self.window = None  # each request clears the session's last headers itself
        brand_id, requests_made = self._brand_id(account, cursors)
        new_cursors: dict[str, Any] = {**cursors, "account_id": brand_id}
        found: dict[str, IncomingPost] = {}
        size = self.settings.mastodon_page_size
        streams = (
            (
                "notifications",
                "notifications_min_id",
                self.client.notifications,
                {"types": ["mention"], "limit": size},
            ),
            (
                "statuses",
                "statuses_min_id",
                self.client.account_statuses,
                {"id": brand_id, "limit": min(size, STATUS_PAGE_MAX)},
            ),
        )
        more = False
        for what, key, method, params in streams:
            cursor = str(cursors[key]) if cursors.get(key) else None
            action = f"{what} of @{account.handle.lstrip('@')}"
            pages, left = self._pages(action, method, cursor, **params)
            more = more or left
            requests_made += len(pages)
            ids: list[str] = []
            for page in pages:
                ids.extend(item_ids(page))
                for post in posts_of(page, brand_id, what=what):
                    found.setdefault(post.external_id, post)
            newest = newest_id(cursor, ids)
            if newest is not None:
                new_cursors[key] = newest
            elif cursor is None:
                # An empty first poll: nothing existed before it, so everything after is new.
                new_cursors[key] = NOTHING_BEFORE
        notes: list[SourceNote] = []
        threads = watch_threads(cursors.get("threads"), found.values(), time.time(), notes)
        requests_made += self._read_threads(threads, brand_id, found)
        new_cursors["threads"] = threads
        posts = sorted(found.values(), key=lambda p: (p.created_at, id_key(p.external_id)))
        wait = seconds_until_reset(self.session.last_headers, datetime.now(UTC))
        return FetchResult(
            posts=posts,
            cursors=new_cursors,
            observed_at=observed_at,
            next_poll_in=wait if wait is not None else (1.0 if more else None),
            requests_made=requests_made,
            rate_windows={ACCOUNT_WINDOW: self.window} if self.window is not None else {},
            notes=notes,
        )

    def _thread_reads(self, watched: int) -> int:
        """How many threads to read this poll: THREADS_PER_POLL, more (up to
        THREADS_PER_POLL_MAX) while the newest rate window has over half its requests left."""
        reads = THREADS_PER_POLL
        window = self.window
        if window is not None:
            reads = max(reads, min(THREADS_PER_POLL_MAX, window.remaining - window.limit // 2))
        return min(watched, reads)

    def _read_threads(
        self, threads: list[list[Any]], brand_id: str, found: dict[str, IncomingPost]
    ) -> int:
        """Read the context of the least recently read watched threads (they move to the end);
        their replies join found. A failure stops this for the poll but never fails it: the
        mentions already read matter more."""
        made = 0
        for _ in range(self._thread_reads(len(threads))):
            status_id, until = threads.pop(0)
            try:
                made += 1
                context = self._call(
                    f"context of {status_id}", self.client.status_context, status_id
                )
            except SourceError as exc:
                if exc.status in (404, 410):
                    continue  # the post is gone: stop watching it
                threads.insert(0, [status_id, until])
                log.warning("Mastodon thread check postponed: %s", exc)
                break
            threads.append([status_id, until])
            descendants = context.get("descendants") if isinstance(context, Mapping) else None
            try:
                for post in posts_of(descendants, brand_id, what="context"):
                    found.setdefault(post.external_id, post)
            except SourceError as exc:
                log.warning("Mastodon context of %s: %s", status_id, exc)
        return made

    def send_reply(self, account: AccountRef, *, in_reply_to: str, text: str) -> SentReply:
        """Reply with a visibility no wider than the post's, mentioning its author (Mastodon
        delivers a direct status only to the accounts it mentions), under an Idempotency-Key."""
        self.rate.account_id = account.id
        brand_id, _ = self._brand_id(account, {})  # before posting: nothing may fail after it
        target = self._call(f"status {in_reply_to}", self.client.status, in_reply_to)
        if not isinstance(target, Mapping):
            raise SourceError(f"Mastodon status {in_reply_to}: the answer is not a status")
        body, visibility = reply_plan(text, target, brand_id=brand_id, brand_handle=account.handle)
        action = f"reply to {in_reply_to}"
        status = self._call(
            action,
            self.client.status_post,
            sending=True,
            status=body,
            in_reply_to_id=in_reply_to,
            visibility=visibility,
            idempotency_key=idempotency_key(account, in_reply_to, text),
        )
        try:
            post = status_to_post(status, brand_id)
        except SourceError as exc:
            raise ReplyOutcomeUnknown(f"Mastodon {action}: {exc}") from None
        post = replace(post, is_brand=True, in_reply_to_external_id=in_reply_to)
        return SentReply(external_id=post.external_id, created_at=post.created_at, post=post)

    def find_reply(
        self,
        account: AccountRef,
        *,
        in_reply_to: str,
        text: str,
        sent_after: datetime | None = None,
        known: Collection[str] = (),
    ) -> SentReply | None:
        """The brand's reply to in_reply_to that an attempt begun at sent_after published: read
        from the post's context, or, when that post is gone, from the brand's own statuses since
        it, and matched by author, parent, time and id (see pick_reply), never by text alone: a
        server renders markup and mentions as it likes."""
        self.rate.account_id = account.id
        brand_id, _ = self._brand_id(account, {})
        try:
            context = self._call(
                f"context of {in_reply_to}", self.client.status_context, in_reply_to
            )
            candidates = posts_of(
                context.get("descendants") if isinstance(context, Mapping) else None,
                brand_id,
                what="context",
            )
        except SourceError as exc:
            if exc.status not in (404, 410):
                raise
            candidates = []
            action = f"statuses of @{account.handle.lstrip('@')}"
            page = self._call(
                action,
                self.client.account_statuses,
                brand_id,
                min_id=in_reply_to,
                limit=STATUS_PAGE_MAX,
            )
            for _ in range(FIND_REPLY_PAGES):
                candidates += posts_of(page, brand_id, what="statuses")
                if not page or not getattr(page, "_pagination_prev", None):
                    break
                page = self._call(action, self.client.fetch_previous, page)
        wanted = comparable_text(text)
        return pick_reply(
            candidates,
            in_reply_to=in_reply_to,
            same_text=lambda post: comparable_text(post.text) == wanted,
            sent_after=sent_after,
            known=known,
        )
