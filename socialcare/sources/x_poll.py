"""One X poll, page by page, so the caller commits each page with the cursors it leaves.

Per stream (the brand's mentions, then its own timeline) the committed cursor `<stream>_since_id`
moves only when the stream's pass is complete. While a pass is in progress `<stream>_pass` holds
{newest, until, count}: the newest id read, the oldest id committed and how many posts were read.
A poll killed mid-pagination resumes with since_id and until_id=until, so it reads on from the
page after its last committed one, never paying again for more than the page in flight.

Only the latest 800 mentions are reachable (X_MENTIONS_WINDOW): when more arrive between two
polls, X silently starts the mentions after the cursor at the oldest one still available. A pass
that reads within a page of the window, or that was resumed (the window may have moved on while
it waited), may have been cut short, so the gap between the stored cursor and the oldest mention
read is searched (one request when nothing is missing) (`@handle OR to:handle`, the last 7 days), in
pages, resumably (`mentions_fill`); what search found is recorded as an incident, and a gap
older than search reaches is an incident of severity error.

The poll reads through XReader, the few public calls it needs of the source (XSource implements
it), so this module does not import the source's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from socialcare.sources.base import AccountRef, FetchResult, IncomingPost, RateWindow, SourceNote
from socialcare.sources.x_parse import max_id, parse_time, posts_from_page

SEARCH_DAYS = 7
# Search's reach is 7 days back from the request; a little margin keeps start_time inside it.
SEARCH_MARGIN = timedelta(minutes=2)
STREAMS = (("mentions", "mentions"), ("timeline", "tweets"))


class XReader(Protocol):
    """What a poll needs of the X source: its pages, the brand's id, the notes and rate windows
    the poll's requests left, and the pace the budget allows."""

    @property
    def mentions_window(self) -> int:
        """How many of the latest mentions X keeps reachable (X_MENTIONS_WINDOW)."""
        ...

    @property
    def page_size(self) -> int:
        """Posts per page asked for (X_PAGE_SIZE)."""
        ...

    def brand_id(self, account: AccountRef, cursors: Mapping[str, Any]) -> tuple[str, int]:
        """The brand's X user id and the requests it took to learn it (0 or 1)."""
        ...

    def page(
        self, account: AccountRef, endpoint: str, *, user_id: str, **params: Any
    ) -> dict[str, Any]:
        """One page of the brand's mentions or timeline ("mentions" or "tweets")."""
        ...

    def search_page(self, account: AccountRef, query: str, **params: Any) -> dict[str, Any]:
        """One page of recent search."""
        ...

    def note(self, note: SourceNote) -> None:
        """Keep a note for the page in progress."""
        ...

    def take_notes(self) -> list[SourceNote]:
        """The notes kept since the last call (partial errors, gaps), handed over once."""
        ...

    def rate_windows(self) -> dict[str, RateWindow]:
        """The rate windows this poll's requests saw, by endpoint."""
        ...

    def poll_floor(self, account: AccountRef) -> tuple[float, bool]:
        """Seconds the next poll waits at least, and whether a window is spent."""
        ...


def min_id(current: str | None, ids: list[str]) -> str | None:
    """The smallest of current and ids, compared as integers."""
    numbers = [int(i) for i in ids if i.isdigit()] + ([int(current)] if current else [])
    return str(min(numbers)) if numbers else None


def _more(page: dict[str, Any]) -> bool:
    return bool((page.get("meta") or {}).get("next_token"))


class _Poll:
    """The state of one poll: the cursors as they stand and what each page yields."""

    def __init__(self, src: XReader, account: AccountRef, cursors: dict[str, Any]) -> None:
        self.src, self.account = src, account
        self.cursors = dict(cursors)
        self.observed_at = datetime.now(UTC)
        self.requests = 0
        self.user_id = ""

    def result(self, posts: list[IncomingPost], *, final: bool = False) -> FetchResult:
        notes = self.src.take_notes()
        result = FetchResult(
            posts=posts,
            cursors=dict(self.cursors),
            observed_at=self.observed_at,
            requests_made=self.requests,
            final=final,
            notes=notes,
            rate_windows=self.src.rate_windows(),
        )
        self.requests = 0
        return result

    def read(self, endpoint: str, **params: Any) -> tuple[dict[str, Any], list[IncomingPost]]:
        self.requests += 1
        if endpoint == "search":
            query = f"@{self.account.handle.lstrip('@')} OR to:{self.account.handle.lstrip('@')}"
            page = self.src.search_page(self.account, query, **params)
        else:
            page = self.src.page(self.account, endpoint, user_id=self.user_id, **params)
        return page, posts_from_page(page, self.user_id)

    def stream(self, name: str, endpoint: str) -> Iterator[FetchResult]:
        key, pass_key = f"{name}_since_id", f"{name}_pass"
        since = str(self.cursors[key]) if self.cursors.get(key) else None
        if since is None:
            # First poll: the newest page only sets the cursor, without paging through history.
            _, posts = self.read(endpoint)
            newest = max_id(None, [p.external_id for p in posts])
            if newest is not None:
                self.cursors[key] = newest
            yield self.result(posts)
            return
        # A pass resumed later (a killed worker, a failed page, a spent budget) may find the
        # window moved on meanwhile, however few posts it read: its gap is always checked.
        resumed = bool(self.cursors.get(pass_key))
        state = dict(self.cursors.get(pass_key) or {"newest": None, "until": None, "count": 0})
        token: str | None = None
        while True:
            params: dict[str, Any] = {"since_id": since}
            if token:
                params["token"] = token
            elif state["until"]:
                params["until_id"] = state["until"]
            page, posts = self.read(endpoint, **params)
            ids = [p.external_id for p in posts]
            state["newest"] = max_id(state["newest"], ids)
            state["until"] = min_id(state["until"], ids)
            state["count"] += len(ids)
            token = (page.get("meta") or {}).get("next_token")
            if token and ids:
                self.cursors[pass_key] = dict(state)
                yield self.result(posts)
                continue
            break
        window = self.src.mentions_window - self.src.page_size
        if name == "mentions" and state["until"] and (resumed or state["count"] >= window):
            self.cursors[pass_key] = dict(state)
            yield self.result(posts)
            posts = []
            yield from self.fill(since, str(state["until"]), int(state["count"]))
        self.cursors.pop(pass_key, None)
        self.cursors[key] = max_id(since, [state["newest"]] if state["newest"] else []) or since
        yield self.result(posts)

    def fill(self, since: str, until: str, read: int) -> Iterator[FetchResult]:
        """Search the gap between the stored cursor and the oldest mention the pass reached."""
        state = dict(self.cursors.get("mentions_fill") or {"until": until, "found": 0})
        now = datetime.now(UTC)
        reach = now - timedelta(days=SEARCH_DAYS) + SEARCH_MARGIN
        gap_from = parse_time(None, since)
        params: dict[str, Any] = {"since_id": since}
        if gap_from < reach:
            params = {"start_time": reach.strftime("%Y-%m-%dT%H:%M:%SZ")}
        while True:
            page, posts = self.read("search", until_id=state["until"], **params)
            ids = [p.external_id for p in posts]
            state["found"] += len(ids)
            state["until"] = min_id(state["until"], ids)
            if _more(page) and ids:
                self.cursors["mentions_fill"] = dict(state)
                yield self.result(posts)
                continue
            break
        self.cursors.pop("mentions_fill", None)
        gap_to = parse_time(None, until)
        data = {
            "since_id": since,
            "until_id": until,
            "gap_from": gap_from.isoformat(),
            "gap_to": gap_to.isoformat(),
            "read": read,
            "found": state["found"],
        }
        handle = self.account.handle.lstrip("@")
        if state["found"]:
            self.src.note(
                SourceNote(
                    "window_overflow",
                    "warning",
                    f"@{handle}: more mentions arrived between two polls than X's window of "
                    f"{self.src.mentions_window} keeps; recent search filled the gap "
                    f"with {state['found']} posts",
                    data,
                )
            )
        if "start_time" in params:
            self.src.note(
                SourceNote(
                    "gap_unreachable",
                    "error",
                    f"@{handle}: mentions from {gap_from:%Y-%m-%d %H:%M} to {reach:%Y-%m-%d %H:%M}"
                    f" UTC are older than recent search reaches ({SEARCH_DAYS} days) and may be "
                    "missing",
                    {**data, "searched_from": reach.isoformat()},
                )
            )
        yield self.result(posts)


def poll_pages(src: XReader, account: AccountRef, cursors: dict[str, Any]) -> Iterator[FetchResult]:
    """The pages of one poll of both streams; the last result has final=True."""
    poll = _Poll(src, account, cursors)
    poll.user_id, poll.requests = src.brand_id(account, cursors)
    poll.cursors["user_id"] = poll.user_id
    for name, endpoint in STREAMS:
        yield from poll.stream(name, endpoint)
    result = poll.result([], final=True)
    result.min_poll_in, spent = src.poll_floor(account)
    result.next_poll_in = result.min_poll_in if spent else None
    yield result
