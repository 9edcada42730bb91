"""coalesce_empty: a page that found nothing is stored with the page after it, and is never
lost when the source fails after it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from socialcare.errors import SourceError
from socialcare.sources.base import (
    FetchResult,
    IncomingPost,
    RateWindow,
    SourceNote,
    coalesce_empty,
)

AT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
RESET = datetime(2026, 12, 4, 12, 15, tzinfo=UTC)


def _post(external_id: str) -> IncomingPost:
    return IncomingPost(
        platform="x",
        external_id=external_id,
        author_external_id="42",
        author_handle="customer",
        text="where is my order",
        created_at=AT,
    )


def _page(step: int, *ids: str, final: bool = False, **kw: object) -> FetchResult:
    return FetchResult(
        posts=[_post(i) for i in ids],
        cursors={"step": step},
        observed_at=AT,
        requests_made=1,
        final=final,
        **kw,  # type: ignore[arg-type]
    )


def test_an_empty_page_is_folded_into_the_next_with_its_requests_and_windows() -> None:
    pages = [
        _page(1, "1", "2"),
        _page(2, rate_windows={"search": RateWindow(450, 10, RESET)}),
        _page(3, rate_windows={"tweets": RateWindow(900, 5, RESET)}),
        _page(4, final=True),
    ]
    out = list(coalesce_empty(iter(pages)))
    assert [p.cursors["step"] for p in out] == [1, 4]
    assert [p.requests_made for p in out] == [1, 3]  # nothing asked of the platform is lost
    assert out[1].final
    assert set(out[1].rate_windows) == {"search", "tweets"}


def test_pages_with_posts_or_notes_are_handed_on_as_they_come() -> None:
    note = SourceNote("partial_errors", "info", "X answered errors beside data", {})
    pages = [_page(1, "1"), _page(2, notes=[note]), _page(3, "3"), _page(4, final=True)]
    out = list(coalesce_empty(iter(pages)))
    assert [p.cursors["step"] for p in out] == [1, 2, 3, 4]
    assert out[1].notes == [note]


def test_an_empty_page_held_when_the_source_fails_is_handed_on_before_the_error() -> None:
    def pages() -> Iterator[FetchResult]:
        yield _page(1, "1")
        yield _page(2)  # the end of a pass: it moves the cursors
        raise SourceError("X timeline failed: HTTP 503")

    out = coalesce_empty(pages())
    assert next(out).cursors == {"step": 1}
    assert next(out).cursors == {"step": 2}
    with pytest.raises(SourceError, match="503"):
        next(out)


def test_an_empty_page_at_the_end_is_not_dropped() -> None:
    out = list(coalesce_empty(iter([_page(1, "1"), _page(2)])))
    assert [p.cursors["step"] for p in out] == [1, 2]
