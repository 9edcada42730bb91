"""The X poll reads through XReader alone: it imports nothing of the source, and any reader that
offers the interface (here an in-memory one) drives it."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from typing import Any

from socialcare.sources.base import AccountRef, RateWindow, SourceNote
from socialcare.sources.x import XSource
from socialcare.sources.x_poll import XReader, poll_pages
from tests.conftest import REPO

ACCOUNT = AccountRef(id=7, platform="x", handle="@brand", external_id="42")


def _tweet(i: int) -> dict[str, Any]:
    return {
        "id": str(i),
        "text": f"@brand post {i}",
        "author_id": "900",
        "created_at": "2026-12-01T10:00:00.000Z",
    }


class MemoryReader:
    """An XReader over fixed pages: one page per stream, a note from the first request."""

    mentions_window = 800
    page_size = 100

    def __init__(self) -> None:
        self.notes: list[SourceNote] = []
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.reset = datetime.now(UTC) + timedelta(minutes=15)

    def brand_id(self, account: AccountRef, cursors: Any) -> tuple[str, int]:
        return str(account.external_id), 0

    def page(self, account: AccountRef, endpoint: str, *, user_id: str, **params: Any) -> Any:
        self.asked.append((endpoint, params))
        if not self.notes and len(self.asked) == 1:
            self.note(SourceNote("partial_errors", "info", "one post withheld", {}))
        ids = (3, 2) if endpoint == "mentions" else ()
        return {"data": [_tweet(i) for i in ids], "meta": {}}

    def search_page(self, account: AccountRef, query: str, **params: Any) -> Any:
        raise AssertionError("no gap to search on a first poll")

    def note(self, note: SourceNote) -> None:
        self.notes.append(note)

    def take_notes(self) -> list[SourceNote]:
        notes, self.notes = self.notes, []
        return notes

    def rate_windows(self) -> dict[str, RateWindow]:
        return {"mentions": RateWindow(450, 449, self.reset)}

    def poll_floor(self, account: AccountRef) -> tuple[float, bool]:
        return 2.0, False


def test_the_poll_module_imports_nothing_of_the_x_source():
    tree = ast.parse((REPO / "socialcare/sources/x_poll.py").read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "socialcare.sources.x" not in imported
    assert {"socialcare.sources.base", "socialcare.sources.x_parse"} >= imported - {
        "__future__",
        "collections.abc",
        "datetime",
        "typing",
    }


def test_a_reader_of_the_interface_drives_a_first_poll():
    reader = MemoryReader()
    pages = list(poll_pages(reader, ACCOUNT, {}))
    assert [p.final for p in pages] == [False, False, True]
    mentions, timeline, last = pages
    assert [p.external_id for p in mentions.posts] == ["3", "2"]
    assert mentions.cursors["mentions_since_id"] == "3"
    assert mentions.notes == [SourceNote("partial_errors", "info", "one post withheld", {})]
    assert timeline.notes == [] and timeline.posts == []
    assert last.cursors == {"user_id": "42", "mentions_since_id": "3"}
    assert last.rate_windows["mentions"].remaining == 449
    assert last.min_poll_in == 2.0 and last.next_poll_in is None
    assert [endpoint for endpoint, _ in reader.asked] == ["mentions", "tweets"]


def test_the_x_source_offers_every_call_of_the_interface():
    members = {name for name in vars(XReader) if not name.startswith("_")}
    assert {"brand_id", "page", "take_notes", "rate_windows", "poll_floor"} <= members
    assert members <= set(dir(XSource))
