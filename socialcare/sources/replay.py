"""Replays TWCS files as a live stream: posts appear as a virtual clock passes their public time.

Two clocks (the feed's config "today"):

- original: the virtual clock starts at the first post's created_at and runs `speedup` times
  faster than the wall clock. Idle stretches longer than `max_gap` virtual seconds are skipped, so
  a file spanning years still streams steadily. Posts keep their original timestamps.
- today: the replay runs on today's clock at the pace the posts were written. Each post's public
  time is moved by one offset (kept in the cursors), so the feed's first `backfill_seconds` land
  in the hours before the first poll and are loaded at once, as seen when they were posted; the
  rest arrive as the wall clock reaches them. An idle stretch longer than `max_gap` is skipped
  (the next post is due at once); a stop of socialcare longer than that pauses the replay (the
  offset grows by the stop), so nothing arrives in a burst dated in the past. Brand replies keep
  their delays, so every latency is real; ids are the original ones, so a restart goes on where
  it stopped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
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
        if account.config.get("today") and not account.config.get("instant"):
            backfill = float(account.config.get("backfill_seconds", 0.0))
            return self._fetch_today(posts, cursors, timedelta(seconds=backfill))
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

    def _fetch_today(
        self, posts: Sequence[IncomingPost], cursors: dict[str, Any], backfill: timedelta
    ) -> FetchResult:
        """The next page on today's clock (see the module's docstring)."""
        wall = _now()
        position = int(cursors.get("position", 0))
        if position < len(posts):
            upcoming = posts[position].created_at
            if "offset" not in cursors:
                # The first poll on this clock: the backfill, or (a feed that streamed on the
                # original clock until now) on from where it stands.
                start = posts[0].created_at + backfill if not position else upcoming
                offset = wall - start
                live_from = wall
            else:
                offset = timedelta(seconds=float(cursors["offset"]))
                live_from = datetime.fromisoformat(cursors["live_from"])
                paused = wall - datetime.fromisoformat(cursors["wall"])
                if paused > self.max_gap:  # socialcare was stopped: so was the replay
                    offset += paused
                if upcoming + offset - wall > self.max_gap:  # an idle stretch: skipped
                    offset = wall - upcoming
        else:
            offset = timedelta(seconds=float(cursors.get("offset", 0.0)))
            live_from = datetime.fromisoformat(cursors.get("live_from", wall.isoformat()))
        end = position
        backfilling = position < len(posts) and posts[position].created_at + offset < live_from
        while end < len(posts) and end - position < MAX_POSTS_PER_POLL:
            due = posts[end].created_at + offset
            # A page holds backfill or live posts, never both: they are seen at different times.
            if due > wall or (backfilling and due >= live_from):
                break
            end += 1
        batch = [replace(p, created_at=p.created_at + offset) for p in posts[position:end]]
        new_cursors = {
            **cursors,
            "position": end,
            "offset": offset.total_seconds(),
            "live_from": live_from.isoformat(),
            "virtual_now": wall.isoformat(),
            "wall": wall.isoformat(),
        }
        return FetchResult(
            posts=batch,
            cursors=new_cursors,
            observed_at=None if backfilling else wall,
            next_poll_in=0.1 if backfilling else 1.0,
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
