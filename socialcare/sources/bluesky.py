"""The Bluesky mention source: the AT Protocol through the atproto SDK, every failure a SourceError.

Two streams are read, newest first, each through its cursor pages: the brand's notifications
(reasons mention, reply and quote; Bluesky notifies a mention only when the post carries a
mention facet) and the brand's own feed (so replies made natively on Bluesky count). Neither API
takes a "since", so each stream keeps a high-water mark: the newest sort time seen, and the ids
seen in the last OVERLAP_MINUTES before it. A poll pages back until it passes the mark less that
overlap (which covers the AppView indexing a post late), and skips the ids it already delivered.

Cursor keys kept in ``FetchResult.cursors``:
  did                    the brand account's DID (from the login)
  notifications_at       ISO time of the newest notification seen
  notifications_recent   {post id: ISO sort time} of those delivered within the overlap
  timeline_at, timeline_recent   the same for the brand's own feed
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from atproto_client import models

from socialcare.config import Settings
from socialcare.errors import ReplyOutcomeUnknown, SourceError
from socialcare.sources.base import ACCOUNT_WINDOW, AccountRef, FetchResult, IncomingPost, SentReply
from socialcare.sources.bluesky_client import Session, seconds_until_reset
from socialcare.sources.bluesky_parse import (
    PLATFORM,
    POST,
    WORK_REASONS,
    comparable_text,
    feed_post,
    notification_post,
    page_items,
    post_id,
    post_uri,
    profile_reach,
    record_post,
    sort_time,
)
from socialcare.sources.bluesky_reply import reply_record, strong_ref, tid_time
from socialcare.sources.parse_common import iso_time as parse_time

log = logging.getLogger(__name__)

OVERLAP_MINUTES = 10
# Notifications and feeds carry an author's basic profile, without followers: their detailed
# profiles are read, 25 a call (app.bsky.actor.getProfiles' most), for at most this many calls
# a poll (the authors of 500 new posts).
PROFILES_PER_CALL = 25
MAX_PROFILE_CALLS = 20
MAX_RECENT = 2000
# Reconciling a reply reads the brand's repository (the PDS: a reply it stored is there even
# before the AppView indexed it), newest first, back to the answered post: at most this many pages.
FIND_REPLY_PAGES = 10

Parse = Callable[[Mapping[str, Any], str], IncomingPost | None]


def _iso(at: datetime) -> str:
    """One fixed ISO form, so stored times compare as strings too."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


class BlueskySource:
    """MentionSource for Bluesky. Never sleeps on a rate limit: a 429 raises RateLimited."""

    platform = PLATFORM

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session = Session(settings)

    def _brand_did(self, account: AccountRef) -> str:
        """The logged-in DID, after checking the credentials are the account's own."""
        wanted = account.handle.lstrip("@").lower()
        configured = self.settings.bluesky_handle.lstrip("@").lower()
        if configured and wanted != configured:
            raise SourceError(
                f"Bluesky account {account.handle!r} is not BLUESKY_HANDLE ({configured!r})",
                permanent=True,
            )
        if self.session.client is None:
            self.session.login()
        did = self.session.did or ""
        if account.external_id and account.external_id != did:
            raise SourceError(
                f"Bluesky login as {configured!r} is {did}, not {account.external_id}",
                permanent=True,
            )
        return did

    def _stream(
        self,
        action: str,
        nsid: str,
        params: Callable[[str | None], Any],
        key: str,
        parse: Parse,
        did: str,
        state: tuple[datetime | None, dict[str, str]],
    ) -> tuple[list[IncomingPost], datetime | None, dict[str, str], int]:
        """One stream's pages back to its mark: (new posts, newest time, recent ids, pages)."""
        mark, recent = state
        floor = mark - timedelta(minutes=OVERLAP_MINUTES) if mark else None
        found: list[IncomingPost] = []
        newest, cursor, seen, pages = mark, None, set(), 0
        fresh = dict(recent)
        while True:
            payload = self.session.call(action, nsid, params=params(cursor))
            pages += 1
            items, cursor = page_items(payload, key, action)
            passed = False
            for item in items:
                at = sort_time(item)
                if at is None:
                    log.warning("Bluesky %s: skipping an item without a usable time", action)
                    continue
                if floor is not None and at < floor:
                    passed = True
                    break
                try:
                    post = parse(item, did)
                except SourceError as exc:
                    log.warning("Bluesky %s: skipping a malformed post: %s", action, exc)
                    continue
                newest = at if newest is None or at > newest else newest
                if post is None or post.external_id in fresh:
                    continue
                fresh[post.external_id] = _iso(at)
                found.append(post)
            if passed or mark is None or cursor is None or cursor in seen:
                break  # the first poll of a stream reads one page: the newest posts
            seen.add(cursor)
        return found, newest, fresh, pages

    def fetch(self, account: AccountRef, cursors: dict[str, Any]) -> FetchResult:
        self.session.rate.account_id = account.id
        observed_at = datetime.now(UTC)
        self.session.request.window = None
        did = self._brand_did(account)
        size = self.settings.bluesky_page_size
        new_cursors: dict[str, Any] = {**cursors, "did": did}
        found: dict[str, IncomingPost] = {}
        requests_made = 0
        streams: tuple[tuple[str, str, Callable[[str | None], Any], str, Parse], ...] = (
            (
                "notifications",
                "app.bsky.notification.listNotifications",
                lambda c: models.AppBskyNotificationListNotifications.Params(
                    limit=size, cursor=c, reasons=sorted(WORK_REASONS)
                ),
                "notifications",
                notification_post,
            ),
            (
                "timeline",
                "app.bsky.feed.getAuthorFeed",
                lambda c: models.AppBskyFeedGetAuthorFeed.Params(
                    actor=did, limit=size, cursor=c, filter="posts_with_replies"
                ),
                "feed",
                feed_post,
            ),
        )
        for name, nsid, params, key, parse in streams:
            mark = parse_time(cursors.get(f"{name}_at"))
            recent = cursors.get(f"{name}_recent")
            recent = {str(k): str(v) for k, v in recent.items()} if isinstance(recent, dict) else {}
            action = f"{name} of {account.handle}"
            posts, newest, fresh, pages = self._stream(
                action, nsid, params, key, parse, did, (mark, recent)
            )
            requests_made += pages
            for post in posts:
                found.setdefault(post.external_id, post)
            newest = newest or observed_at  # an empty first poll still sets the mark
            keep_from = _iso(newest - timedelta(minutes=OVERLAP_MINUTES))
            kept = sorted(((at, i) for i, at in fresh.items() if at >= keep_from), reverse=True)
            new_cursors[f"{name}_at"] = _iso(newest)
            new_cursors[f"{name}_recent"] = {i: at for at, i in kept[:MAX_RECENT]}
        requests_made += self._add_reach(account, found)
        posts = sorted(found.values(), key=lambda p: (p.created_at, p.external_id))
        return FetchResult(
            posts=posts,
            cursors=new_cursors,
            observed_at=observed_at,
            next_poll_in=seconds_until_reset(self.session.last_headers, datetime.now(UTC)),
            requests_made=requests_made,
            rate_windows={ACCOUNT_WINDOW: window}
            if (window := self.session.request.window)
            else {},
        )

    def _add_reach(self, account: AccountRef, found: dict[str, IncomingPost]) -> int:
        """Give the customers' posts their authors' follower counts (and verification) from
        their detailed profiles; returns the requests made. A failed lookup leaves the reach
        unknown and never fails the poll: the posts matter more."""
        authors = list(
            dict.fromkeys(p.author_external_id for p in found.values() if not p.is_brand)
        )[: PROFILES_PER_CALL * MAX_PROFILE_CALLS]
        reach: dict[str, tuple[int | None, bool]] = {}
        calls = 0
        for i in range(0, len(authors), PROFILES_PER_CALL):
            calls += 1
            try:
                payload = self.session.call(
                    f"profiles of {account.handle}'s customers",
                    "app.bsky.actor.getProfiles",
                    params=models.AppBskyActorGetProfiles.Params(
                        actors=authors[i : i + PROFILES_PER_CALL]
                    ),
                )
            except SourceError as exc:
                log.warning("Bluesky reach of the authors left unknown: %s", exc)
                break
            profiles = payload.get("profiles") if isinstance(payload, Mapping) else None
            for profile in profiles if isinstance(profiles, list) else []:
                known = profile_reach(profile)
                if known is not None:
                    reach[known[0]] = known[1:]
        for key, post in found.items():
            if post.author_external_id in reach:
                followers, verified = reach[post.author_external_id]
                found[key] = replace(
                    post,
                    author_followers=followers,
                    author_verified=verified or post.author_verified,
                )
        return calls

    def _target(self, in_reply_to: str) -> str:
        uri = post_uri(in_reply_to)
        if uri is None:
            raise SourceError(
                f"Bluesky post {in_reply_to} cannot be answered from socialcare (its AT URI is "
                "longer than socialcare keeps); answer it in a Bluesky app",
                permanent=True,
            )
        return uri

    def send_reply(self, account: AccountRef, *, in_reply_to: str, text: str) -> SentReply:
        self.session.rate.account_id = account.id
        did = self._brand_did(account)
        uri = self._target(in_reply_to)
        action = f"lookup of {in_reply_to}"
        answer = self.session.call(
            action, "app.bsky.feed.getPosts", params=models.AppBskyFeedGetPosts.Params(uris=[uri])
        )
        views, _ = page_items(answer, "posts", action)
        parent = next((v for v in views if v.get("uri") == uri), None)
        if parent is None:
            raise SourceError(
                f"Bluesky post {in_reply_to} is gone (deleted, or hidden from the brand)",
                permanent=True,
            )
        parent_ref = strong_ref(parent)
        if parent_ref is None:
            raise SourceError(f"Bluesky post {in_reply_to} has no usable cid", permanent=True)
        reply = (parent.get("record") or {}).get("reply") or {}
        root_ref = strong_ref(reply.get("root")) if isinstance(reply, Mapping) else None
        author = parent.get("author") or {}
        known = {str(author.get("handle", "")).lower(): str(author.get("did", ""))}
        at = datetime.now(UTC)
        record = reply_record(
            text, parent=parent_ref, root=root_ref or parent_ref, at=at, known=known
        )
        data = models.ComAtprotoRepoCreateRecord.Data(repo=did, collection=POST, record=record)
        action = f"reply to {in_reply_to}"
        created = self.session.call(
            action, "com.atproto.repo.createRecord", data=data, sending=True
        )
        ref = strong_ref(created) if isinstance(created, Mapping) else None
        if ref is None:
            raise ReplyOutcomeUnknown(f"Bluesky {action}: the answer has no uri and cid")
        post = record_post(
            {
                "uri": ref["uri"],
                "cid": ref["cid"],
                "record": record,
                "author": {"did": did, "handle": account.handle.lstrip("@")},
                "indexedAt": record["createdAt"],
            },
            did,
        )
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
        """Look through the brand's repository, newest first, back to the answered post's time
        (its record key is a TID), for a reply to it with the same text (whitespace-normalised,
        links masked; a record holds the text as it was sent), not one of known."""
        self.session.rate.account_id = account.id
        did = self._brand_did(account)
        uri = self._target(in_reply_to)
        since = tid_time(uri.rsplit("/", 1)[-1])
        wanted = comparable_text(text)
        action = f"records of {account.handle}"
        cursor: str | None = None
        for _ in range(FIND_REPLY_PAGES):
            params = models.ComAtprotoRepoListRecords.Params(
                repo=did, collection=POST, limit=100, cursor=cursor
            )
            records, cursor = page_items(
                self.session.call(action, "com.atproto.repo.listRecords", params=params),
                "records",
                action,
            )
            for item in records:
                value = item.get("value")
                if not isinstance(value, Mapping):
                    continue
                created = parse_time(value.get("createdAt"))
                if (
                    since is not None
                    and created is not None
                    and created < since - timedelta(hours=1)
                ):
                    return None
                parent = ((value.get("reply") or {}).get("parent") or {}).get("uri")
                if parent != uri or comparable_text(str(value.get("text", ""))) != wanted:
                    continue
                view = {
                    **item,
                    "record": value,
                    "indexedAt": value.get("createdAt"),
                    "author": {"did": did, "handle": account.handle.lstrip("@")},
                }
                try:
                    post = record_post(view, did)
                except SourceError as exc:
                    log.warning("Bluesky %s: a matching reply is unreadable: %s", action, exc)
                    continue
                if post.external_id in known:
                    continue
                return SentReply(post.external_id, post.created_at, post)
            if cursor is None:
                return None
        return None


__all__ = ["BlueskySource", "post_id"]
