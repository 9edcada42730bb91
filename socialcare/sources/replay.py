"""Replays TWCS files as a live stream: posts appear as a virtual clock passes their public time.

The virtual clock starts at the first post's created_at and runs `speedup` times faster than the
wall clock. Idle stretches longer than `max_gap` virtual seconds are skipped, so a file spanning
years still streams steadily.

A feed whose config has `replay_clock: "now"` replays on today's clock: every post, the brand's
replies included, is shifted by one amount, fixed when the replay starts at the file's first post,
that puts the first post at that moment (to the second). Offsets between posts, and so every
response time in the data, stay exactly as they were. Otherwise (and in a backfill, `instant`)
posts keep their original timestamps as their public times.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from socialcare.errors import SourceError
from socialcare.sources import twcs
from socialcare.sources.base import AccountRef, FetchResult, IncomingPost, SentReply

MAX_POSTS_PER_POLL = 500
REPLAY_CLOCKS = ("now", "original")


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
        shift = _shift(account.config, cursors, posts, position, wall)

        def at(i: int) -> datetime:
            return posts[i].created_at + shift

        clock = virtual_now(cursors, speedup, wall) if position else None
        if position < len(posts):
            upcoming = at(position)
            if clock is None or upcoming - clock > self.max_gap:
                clock = upcoming
        if account.config.get("instant") and position < len(posts):
            # A backfill: no clock to wait for, the next page of posts is due at once.
            clock = at(min(len(posts), position + MAX_POSTS_PER_POLL) - 1)
        clock = clock or wall
        end = position
        while end < len(posts) and end - position < MAX_POSTS_PER_POLL:
            if at(end) > clock:
                break
            end += 1
        batch = [replace(p, created_at=p.created_at + shift) for p in posts[position:end]]
        if end - position == MAX_POSTS_PER_POLL and end < len(posts):
            clock = min(clock, at(end))
        new_cursors = {
            **cursors,
            "position": end,
            "virtual_now": clock.isoformat(),
            "wall": wall.isoformat(),
            "shift_seconds": int(shift.total_seconds()),
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


def _shift(
    config: dict[str, Any],
    cursors: dict[str, Any],
    posts: tuple[IncomingPost, ...],
    position: int,
    wall: datetime,
) -> timedelta:
    """How far this replay moves every post: fixed by its cursors once it has started; for a
    replay starting on today's clock, from the first post to now (whole seconds)."""
    if "shift_seconds" in cursors:
        return timedelta(seconds=int(cursors["shift_seconds"]))
    mode = config.get("replay_clock", "original")
    if mode not in REPLAY_CLOCKS:
        raise SourceError(
            f"replay_clock must be one of {', '.join(REPLAY_CLOCKS)}, got {mode!r}", permanent=True
        )
    if mode == "original" or config.get("instant") or position or not posts:
        return timedelta(0)
    return wall.replace(microsecond=0) - posts[0].created_at


def with_clock(account: AccountRef, feed_cursors: dict[str, Any], speedup: float) -> AccountRef:
    """The account as send_reply needs it: carrying the replay clock of its feed."""
    clock = virtual_now(feed_cursors, speedup)
    return replace(account, config={**account.config, "clock": clock.isoformat()})
