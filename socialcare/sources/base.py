"""The MentionSource protocol every platform implements, and the data it exchanges."""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
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


@dataclass(frozen=True)
class RateWindow:
    """One endpoint's rate window as the platform last reported it."""

    limit: int
    remaining: int
    reset_at: datetime

    def spent(self, now: datetime) -> bool:
        """No request left until reset_at, which is still ahead."""
        return self.remaining <= 0 and self.reset_at > now


# The endpoint name of a window that covers every request made for an account (Mastodon's and
# Bluesky's limits are per token, not per endpoint): when it is spent, no poll can be made.
ACCOUNT_WINDOW = "api"
_MAX_COUNT_DIGITS = 12  # more than any real limit or epoch, few enough to stay finite


def header_count(value: str | None) -> int | None:
    """A rate-limit header's number: ASCII digits only (a header is untrusted text)."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    return int(value) if len(value) <= _MAX_COUNT_DIGITS else None


def epoch_time(value: str | None) -> datetime | None:
    """A rate-limit header's epoch seconds as a time; None when unreadable or out of range."""
    seconds = header_count(value)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def read_window(
    limit: str | None, remaining: str | None, reset_at: datetime | None
) -> RateWindow | None:
    """A rate window from a platform's limit and remaining headers and its reset time; None
    when any of them is missing or unreadable."""
    most, left = header_count(limit), header_count(remaining)
    if most is None or left is None or reset_at is None:
        return None
    return RateWindow(most, left, reset_at)


def wait_if_spent(remaining: str | None, reset_at: datetime | None, now: datetime) -> float | None:
    """Seconds until reset_at when the answer said no request is left, else None."""
    if remaining != "0" or reset_at is None:
        return None
    return max(0.0, (reset_at - now).total_seconds())


@dataclass(frozen=True)
class SourceNote:
    """Something about an account's ingestion that operators must see (an incident): kind,
    severity (info, warning, error), a readable detail and data (ids, times, counts)."""

    kind: str
    severity: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class FetchResult:
    """What one poll found, or one page of it (see fetch_pages).

    cursors: the account's new cursor state, stored only in the transaction that stores posts.
    observed_at: the source's clock at the poll (a replay's virtual clock; otherwise now); None:
      each post as seen at its public time (a backfill).
    next_poll_in: seconds until the source wants to be polled again, if it has an opinion.
    min_poll_in: a budgeted source's floor for the next poll (the flow then adapts the interval
      to the flow of mentions, never below it); None leaves pacing to next_poll_in.
    exhausted: a finite source (replay) has nothing more to deliver.
    final: the last page of a poll (cursors complete); earlier pages carry in-progress cursors.
    notes: incidents to record; rate_windows: the rate windows seen, by endpoint.
    """

    posts: list[IncomingPost]
    cursors: dict[str, Any]
    observed_at: datetime | None
    next_poll_in: float | None = None
    exhausted: bool = False
    requests_made: int = 0
    min_poll_in: float | None = None
    final: bool = True
    notes: list[SourceNote] = field(default_factory=list)
    rate_windows: dict[str, RateWindow] = field(default_factory=dict)


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
    find_reply: look on the platform for the reply an attempt published to in_reply_to, to
      reconcile a reply whose outcome was unknown; None when there is none. sent_after (when the
      attempt began) and known (ids of the brand's posts that are not this attempt's: other
      replies', or stored before it) let it match by what the platform gives back (author,
      parent, time, id) rather than by text, which a server may render differently (see
      pick_reply); without sent_after only a reply with the same text counts.

    A source that pages may also offer fetch_pages(account, cursors), an iterator of results,
    one a page, each with the cursors to store with its posts (in-progress state included, so a
    poll killed mid-pagination resumes where its last committed page left off); the last one
    has final=True. fetch_pages() below uses it when it is there.
    """

    platform: str

    def fetch(self, account: AccountRef, cursors: dict[str, Any]) -> FetchResult: ...

    def send_reply(self, account: AccountRef, *, in_reply_to: str, text: str) -> SentReply: ...

    def find_reply(
        self,
        account: AccountRef,
        *,
        in_reply_to: str,
        text: str,
        sent_after: datetime | None = None,
        known: Collection[str] = (),
    ) -> SentReply | None: ...


# How far a platform's clock may be behind ours when a reply's public time is compared with the
# moment its send began.
CLOCK_SKEW = timedelta(minutes=2)


def pick_reply(
    candidates: Iterable[IncomingPost],
    *,
    in_reply_to: str,
    same_text: Callable[[IncomingPost], bool],
    sent_after: datetime | None,
    known: Collection[str] = (),
) -> SentReply | None:
    """The reply an attempt published, among posts read back from the platform.

    A candidate is a brand post answering in_reply_to, not one of known, made no earlier than
    sent_after (less CLOCK_SKEW). Text decides only between candidates (a server may render
    markup or rewrite mentions, so a published reply need not read back as it was sent): the
    earliest with the same text, else the earliest. Without sent_after nothing ties a post to the
    attempt, so only the same text counts."""
    fitting = [
        post
        for post in candidates
        if post.is_brand
        and not post.is_retweet
        and post.in_reply_to_external_id == in_reply_to
        and post.external_id not in known
        and (sent_after is None or post.created_at >= sent_after - CLOCK_SKEW)
    ]
    same = [post for post in fitting if same_text(post)]
    pool = same if same or sent_after is None else fitting
    if not pool:
        return None
    post = min(pool, key=lambda p: p.created_at)
    return SentReply(post.external_id, post.created_at, post)


def fetch_pages(
    source: MentionSource, account: AccountRef, cursors: dict[str, Any]
) -> Generator[FetchResult, None, None]:
    """A poll as pages: the source's own fetch_pages, else its fetch as one final page."""
    pages = getattr(source, "fetch_pages", None)
    if pages is None:
        yield source.fetch(account, cursors)
        return
    yield from pages(account, cursors)


def coalesce_empty(pages: Iterator[FetchResult]) -> Generator[FetchResult, None, None]:
    """Pages with an empty page (no posts, no notes, not final) folded into the page after it:
    its cursors are superseded by the next page's, its requests are added to them. A poll then
    commits no transaction for a request that found nothing (the end of a pass, an empty search
    or timeline page). An empty page held when the source fails is handed on before the error,
    so what it moved is stored as before; one held when a worker dies costs only its requests
    again (it read nothing to be billed for)."""
    held: FetchResult | None = None
    while True:
        try:
            page = next(pages)
        except StopIteration:
            break
        except BaseException:
            if held is not None:
                yield held
            raise
        if held is not None:
            page = replace(
                page,
                requests_made=held.requests_made + page.requests_made,
                rate_windows={**held.rate_windows, **page.rate_windows},
            )
            held = None
        if page.posts or page.notes or page.final:
            yield page
        else:
            held = page
    if held is not None:
        yield held
