"""Threads a Mastodon brand answered, read again for replies that do not mention the brand.

Mastodon notifies only mentions, so a customer's reply in a thread the brand answered that does
not mention the brand is found by reading the thread's context again. The threads are kept in
the account's ``threads`` cursor as [[status id, watch until (epoch seconds)], ...], the least
recently read first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from socialcare.sources.base import IncomingPost, SourceNote

# The adapter's logger name: operators filter the Mastodon source's lines by it.
log = logging.getLogger("socialcare.sources.mastodon")

# How long a thread the brand answered is read again.
THREAD_WATCH_SECONDS = 48 * 3600
# A bound on the cursor's size only (two days of answers stay far below it); a thread dropped
# for it is logged and reported as an ingestion incident.
MAX_THREADS_WATCHED = 20_000


def watch_threads(
    old: object, posts: Iterable[IncomingPost], now: float, notes: list[SourceNote]
) -> list[list[Any]]:
    """The threads to watch, the least recently read first: threads the brand answered now
    (never read yet; a later answer extends the watch), then those still watched."""
    watched: dict[str, float] = {}
    for item in old if isinstance(old, list) else []:
        valid = isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
        if valid and isinstance(item[1], int | float) and item[1] > now:
            watched.setdefault(item[0], item[1])
    fresh: dict[str, float] = {}
    for post in posts:
        parent = post.in_reply_to_external_id
        until = int(post.created_at.timestamp() + THREAD_WATCH_SECONDS)
        answer = post.is_brand and not post.is_retweet and parent is not None
        if answer and parent is not None and until > now:
            if parent in watched:
                watched[parent] = max(watched[parent], until)
            elif until > fresh.get(parent, 0):
                fresh[parent] = until
    threads: list[list[Any]] = [[i, u] for i, u in fresh.items()]
    threads += [[i, u] for i, u in watched.items()]
    excess = len(threads) - MAX_THREADS_WATCHED
    if excess > 0:
        # Never silently: the threads whose watch ends soonest go, and operators hear of it.
        ending = sorted(threads, key=lambda t: float(t[1]))[:excess]
        gone = {t[0] for t in ending}
        threads = [t for t in threads if t[0] not in gone]
        detail = (
            f"Mastodon: {excess} answered thread(s) dropped from the two-day watch (more "
            f"than {MAX_THREADS_WATCHED} watched); replies in them that do not mention the "
            "brand are no longer read"
        )
        log.warning(detail)
        notes.append(
            SourceNote(
                "threads_dropped",
                "warning",
                detail,
                {"dropped": excess, "status_ids": [t[0] for t in ending][:50]},
            )
        )
    return threads
