"""The MentionSource protocol every platform implements, and the data it exchanges."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class AccountRef:
    """What a source needs to know of a monitored account (no ORM objects cross this line)."""

    id: int
    platform: str
    handle: str
    external_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IncomingPost:
    """One post as a source delivers it, already normalised (text unescaped, times UTC-aware).

    brand_handle names the brand account the post concerns (for a source that serves several
    brands, such as a replay of a multi-brand file); None means the polled account itself.
    """

    platform: str
    external_id: str
    author_external_id: str
    author_handle: str
    text: str
    created_at: datetime
    is_brand: bool = False
    is_retweet: bool = False
    in_reply_to_external_id: str | None = None
    conversation_external_id: str | None = None
    quoted_external_id: str | None = None
    author_followers: int | None = None
    author_verified: bool = False
    lang: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    brand_handle: str | None = None


@dataclass
class FetchResult:
    """What one poll found.

    cursors: the account's new cursor state, stored only in the transaction that stores posts.
    observed_at: the source's clock at the poll (a replay's virtual clock; otherwise now).
    next_poll_in: seconds until the source wants to be polled again, if it has an opinion.
    exhausted: a finite source (replay) has nothing more to deliver.
    """

    posts: list[IncomingPost]
    cursors: dict[str, Any]
    observed_at: datetime
    next_poll_in: float | None = None
    exhausted: bool = False
    requests_made: int = 0


@dataclass(frozen=True)
class SentReply:
    """A reply the platform has published: its id, public time and the post as a brand post."""

    external_id: str
    created_at: datetime
    post: IncomingPost


class MentionSource(Protocol):
    """A platform that delivers mentions of a brand account and publishes the brand's replies.

    fetch: every post newer than the cursors, customer mentions and the brand's own posts
      (brand posts flagged is_brand, retweets is_retweet); all pages of one poll, so the caller
      can store posts and the new cursors in one transaction. Raises SourceError (permanent or
      with retry_after) for platform failures, never a library's own exception.
    send_reply: publish text as a public reply to in_reply_to; raises ReplyOutcomeUnknown when the
      request may have reached the platform without an answer (never retry those blindly).
    find_reply: look on the platform for a reply already published to in_reply_to with this text,
      to reconcile a reply whose outcome was unknown; None when there is none.
    """

    platform: str

    def fetch(self, account: AccountRef, cursors: dict[str, Any]) -> FetchResult: ...

    def send_reply(self, account: AccountRef, *, in_reply_to: str, text: str) -> SentReply: ...

    def find_reply(
        self, account: AccountRef, *, in_reply_to: str, text: str
    ) -> SentReply | None: ...
