"""Replays TWCS files as a live stream: posts appear as a virtual clock passes their public time.

The virtual clock starts at the first post's created_at and runs `speedup` times faster than the
wall clock. Idle stretches longer than `max_gap` virtual seconds are skipped, so a file spanning
years still streams steadily. Posts keep their original timestamps as their public times.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from socialcare.sources import twcs
from socialcare.sources.base import AccountRef, FetchResult, IncomingPost, SentReply

MAX_POSTS_PER_POLL = 500


def _now() -> datetime:
    return datetime.now(UTC)


def virtual_now(cursors: dict[str, Any], speedup: float, wall: datetime | None = None) -> datetime:
    """The replay clock for stored cursors: where it stood plus the wall time since, sped up."""
    wall = wall or _now()
    if "virtual_now" not in cursors:
        return wall
    then = datetime.fromisoformat(cursors["virtual_now"])
    elapsed = (wall - datetime.fromisoformat(cursors["wall"])).total_seconds()
    return then + timedelta(seconds=max(0.0, elapsed) * speedup)


class ReplaySource:
    """A MentionSource over TWCS files; replies are recorded, never sent anywhere."""

    platform = twcs.PLATFORM

    def __init__(self, *, speedup: float = 60.0, max_gap_seconds: float = 600.0) -> None:
        self.speedup = speedup
        self.max_gap = timedelta(seconds=max_gap_seconds)

    def fetch(self, account: AccountRef, cursors: dict[str, Any]) -> FetchResult:
        """Posts whose public time the virtual clock has passed since the last poll."""
        files = [Path(p) for p in account.config.get("files", [])]
        speedup = float(account.config.get("speedup", self.speedup))
        posts = twcs.load_posts(files)
        position = int(cursors.get("position", 0))
        wall = _now()
        clock = virtual_now(cursors, speedup, wall) if position else None
        if position < len(posts):
            upcoming = posts[position].created_at
            if clock is None or upcoming - clock > self.max_gap:
                clock = upcoming
        if account.config.get("instant") and position < len(posts):
            # A backfill: no clock to wait for, the next page of posts is due at once.
            clock = posts[min(len(posts), position + MAX_POSTS_PER_POLL) - 1].created_at
        clock = clock or wall
        end = position
        while end < len(posts) and end - position < MAX_POSTS_PER_POLL:
            if posts[end].created_at > clock:
                break
            end += 1
        batch = list(posts[position:end])
        if end - position == MAX_POSTS_PER_POLL and end < len(posts):
            clock = min(clock, posts[end].created_at)
        new_cursors = {
            **cursors,
            "position": end,
            "virtual_now": clock.isoformat(),
            "wall": wall.isoformat(),
        }
        return FetchResult(
            posts=batch,
            cursors=new_cursors,
            observed_at=clock,
            next_poll_in=1.0,
            exhausted=end >= len(posts),
        )

    def send_reply(self, account: AccountRef, *, in_reply_to: str, text: str) -> SentReply:
        """Record the reply as published now on the replay clock, with an id derived from it."""
        clock = account.config.get("clock")
        created = datetime.fromisoformat(clock) if clock else _now()
        digest = hashlib.sha256(f"{in_reply_to}\x00{text}".encode()).hexdigest()[:16]
        post = IncomingPost(
            platform=self.platform,
            external_id=f"r{digest}",
            author_external_id=account.handle,
            author_handle=account.handle,
            text=text,
            created_at=created,
            is_brand=True,
            in_reply_to_external_id=in_reply_to,
            brand_handle=account.handle,
        )
        return SentReply(external_id=post.external_id, created_at=created, post=post)

    def find_reply(
        self,
        account: AccountRef,
        *,
        in_reply_to: str,
        text: str,
        sent_after: datetime | None = None,
        known: Collection[str] = (),
    ) -> SentReply | None:
        """A replay publishes synchronously, so an unknown outcome is always a fresh send."""
        return None


def with_clock(account: AccountRef, feed_cursors: dict[str, Any], speedup: float) -> AccountRef:
    """The account as send_reply needs it: carrying the replay clock of its feed."""
    clock = virtual_now(feed_cursors, speedup)
    return replace(account, config={**account.config, "clock": clock.isoformat()})
